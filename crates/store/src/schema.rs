//! Versions of sprocketd's own layout, and the one mechanism that brings
//! an older layout up to date.
//!
//! The queue table itself is gearmand's: sprocketd adopts it as it finds
//! it each time it connects (creating it when missing, and adding
//! `when_to_run` to a table from a gearmand older than that column, as
//! gearmand itself would have), and never otherwise alters it. That
//! adoption is not versioned, as gearmand or an operator may replace the
//! table at any time; it lives with each backend.
//!
//! What sprocketd keeps beside the queue is versioned. Each SQL database
//! has a table `sprocket_meta (queue_table, schema_version)` with one row
//! per queue table (a queue table gearmand made has none: version 0), and
//! [`SQL_MIGRATIONS`] lists the numbered steps from each version to the
//! next, with the statements of each SQL dialect. When it connects, a
//! backend runs the steps above the recorded version, in order, inside
//! one transaction where the database allows (MySQL commits each
//! `CREATE`/`ALTER` at once), and records the version reached. A version
//! newer than this sprocketd knows refuses to start, saying so. Redis
//! keeps the version of its key layout in the hash `sprocket_meta`, one
//! field per key prefix, with its own list [`REDIS_MIGRATIONS`].
//!
//! To change the layout, add a step at the end of the list (never edit a
//! step that has shipped) and a test that opens a layout of every earlier
//! version and checks it is migrated.

use crate::{Result, StoreError};

/// One step of a layout: it brings a layout at `version - 1` to `version`.
#[derive(Debug)]
pub struct Migration<Step: 'static> {
    /// The version the step brings the layout to; the steps of a list are
    /// numbered 1, 2, 3, … in order.
    pub version: i64,
    /// What the step changes, for logs and for readers of the list.
    pub purpose: &'static str,
    /// The work of the step.
    pub step: Step,
}

/// The SQL databases sprocketd writes to, whose statements differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite 3.
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
}

/// The statements of one SQL step in a dialect, given the queue table's
/// name quoted for that dialect (so that a step can name tables after it).
pub type SqlStep = fn(Dialect, &str) -> Vec<String>;

/// The steps of sprocketd's own tables in the SQL databases.
///
/// Version 1 is `sprocket_meta` holding the queue table's row, and nothing
/// else: every sprocketd so far has written version 1, so the step has no
/// statements (the runner makes `sprocket_meta` itself, as it must read
/// it first).
///
/// Version 2 adds the job record tables, shared by every queue table of
/// the database and keyed by the queue table's name (`namespace`):
/// `sprocket_records` (one row per job, see [`record_tables`]) and
/// `sprocket_handles` (the next free handle number).
///
/// Version 3 adds `sprocket_settings`, what operators set at run time that
/// must outlive a restart (paused functions now; later policies and
/// recurring jobs), shared and keyed by `namespace` like the records (see
/// [`settings_table`]).
///
/// Version 4 makes the record indexes partial where the database allows
/// (SQLite, PostgreSQL): the searches and expiry read only ended records
/// and replay only live ones, so each index holds only those, and a
/// record's writes while its job is queued or running touch the row and
/// one small index instead of four (measured: with every background job
/// recorded, durable submits lost more than half their throughput on
/// SQLite with the version 2 indexes). MySQL has no partial indexes and
/// keeps version 2's.
///
/// Version 5 adds an index of ended records by state and end
/// ([`records_by_state_index`]): dead records are kept longer than the
/// others (`--dead-retention`), so expiry deletes each state's records
/// past its own cutoff, and an index walk by end time alone would step
/// over every dead record still kept, batch after batch. It also serves
/// listings and purges of one state across functions.
pub const SQL_MIGRATIONS: &[Migration<SqlStep>] = &[
    Migration { version: 1, purpose: "sprocket_meta records the queue table", step: |_, _| Vec::new() },
    Migration { version: 2, purpose: "job records and the handle counter", step: |d, _| record_tables(d) },
    Migration { version: 3, purpose: "operator settings", step: |d, _| settings_table(d) },
    Migration { version: 4, purpose: "partial record indexes", step: |d, _| partial_record_indexes(d) },
    Migration { version: 5, purpose: "ended records by state", step: |d, _| records_by_state_index(d) },
];

/// The statement of version 3: one row per setting, named by its kind
/// (such as `paused`) and a name within the kind (such as a function's,
/// kept byte for byte), with a text value (JSON where it has structure).
/// `IF NOT EXISTS`: the table is shared by every queue table of the
/// database.
pub fn settings_table(dialect: Dialect) -> Vec<String> {
    vec![match dialect {
        Dialect::Sqlite => {
            "CREATE TABLE IF NOT EXISTS sprocket_settings (namespace TEXT NOT NULL, kind TEXT NOT NULL, \
                            name BLOB NOT NULL, value TEXT NOT NULL, PRIMARY KEY (namespace, kind, name))"
                .into()
        }
        Dialect::Postgres => {
            "CREATE TABLE IF NOT EXISTS sprocket_settings (namespace TEXT NOT NULL, kind TEXT NOT NULL, \
                              name BYTEA NOT NULL, value TEXT NOT NULL, PRIMARY KEY (namespace, kind, name))"
                .into()
        }
        Dialect::Mysql => "CREATE TABLE IF NOT EXISTS sprocket_settings (namespace VARCHAR(64) NOT NULL, \
                           kind VARCHAR(32) CHARACTER SET ascii NOT NULL, name VARBINARY(512) NOT NULL, \
                           value MEDIUMTEXT NOT NULL, PRIMARY KEY (namespace, kind, name)) ENGINE=InnoDB"
            .into(),
    }]
}

/// The statements of version 4 (see [`SQL_MIGRATIONS`]). The indexes are
/// shared by every queue table of the database: the step of a second
/// queue table finds them made.
pub fn partial_record_indexes(dialect: Dialect) -> Vec<String> {
    match dialect {
        Dialect::Sqlite | Dialect::Postgres => [
            "DROP INDEX IF EXISTS sprocket_records_by_end",
            "DROP INDEX IF EXISTS sprocket_records_by_function",
            "DROP INDEX IF EXISTS sprocket_records_by_row",
            "CREATE INDEX IF NOT EXISTS sprocket_records_ended ON sprocket_records (namespace, finished) \
             WHERE finished IS NOT NULL",
            "CREATE INDEX IF NOT EXISTS sprocket_records_ended_by_function \
             ON sprocket_records (namespace, function, finished) WHERE finished IS NOT NULL",
            "CREATE INDEX IF NOT EXISTS sprocket_records_live_by_row \
             ON sprocket_records (namespace, function, row_unique) WHERE finished IS NULL",
        ]
        .map(str::to_owned)
        .to_vec(),
        Dialect::Mysql => Vec::new(),
    }
}

/// Version 5: ended records by (state, end). Partial where the database
/// allows; on MySQL added only when missing (the table is shared by every
/// queue table of the database, and each runs this step), through a
/// statement prepared from the catalog, since MySQL has no
/// `ADD KEY IF NOT EXISTS`.
pub fn records_by_state_index(dialect: Dialect) -> Vec<String> {
    match dialect {
        Dialect::Sqlite | Dialect::Postgres => vec!["CREATE INDEX IF NOT EXISTS sprocket_records_ended_by_state \
             ON sprocket_records (namespace, state, finished) WHERE finished IS NOT NULL"
            .into()],
        Dialect::Mysql => vec![
            "SET @sprocket_step = (SELECT IF(COUNT(*) = 0, \
             'ALTER TABLE sprocket_records ADD KEY sprocket_records_by_state (namespace, state, finished)', \
             'DO 0') FROM information_schema.statistics WHERE table_schema = DATABASE() \
             AND table_name = 'sprocket_records' AND index_name = 'sprocket_records_by_state')"
                .into(),
            "PREPARE sprocket_step FROM @sprocket_step".into(),
            "EXECUTE sprocket_step".into(),
            "DEALLOCATE PREPARE sprocket_step".into(),
        ],
    }
}

/// The statements of version 2: the record table with its indexes (by end
/// time for expiry and listing; by function, state and end for searches;
/// by queue row for replay) and the handle counter. `IF NOT EXISTS`: the
/// tables are shared, so the step of a second queue table finds them made.
pub fn record_tables(dialect: Dialect) -> Vec<String> {
    match dialect {
        Dialect::Sqlite | Dialect::Postgres => {
            let (bytes, int) = if dialect == Dialect::Sqlite { ("BLOB", "INTEGER") } else { ("BYTEA", "BIGINT") };
            vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS sprocket_records (namespace TEXT NOT NULL, handle TEXT NOT NULL, \
                     function {bytes} NOT NULL, row_unique {bytes} NOT NULL, state TEXT NOT NULL, \
                     submitted {int} NOT NULL, finished {int}, body {bytes} NOT NULL, \
                     PRIMARY KEY (namespace, handle))"
                ),
                "CREATE INDEX IF NOT EXISTS sprocket_records_by_end ON sprocket_records (namespace, finished)".into(),
                "CREATE INDEX IF NOT EXISTS sprocket_records_by_function \
                 ON sprocket_records (namespace, function, state, finished)"
                    .into(),
                "CREATE INDEX IF NOT EXISTS sprocket_records_by_row ON sprocket_records (namespace, function, row_unique)"
                    .into(),
                format!(
                    "CREATE TABLE IF NOT EXISTS sprocket_handles (namespace TEXT PRIMARY KEY, next_handle {int} NOT NULL)"
                ),
            ]
        }
        // MySQL has no CREATE INDEX IF NOT EXISTS: the indexes are part of
        // the table's statement.
        Dialect::Mysql => vec![
            "CREATE TABLE IF NOT EXISTS sprocket_records (namespace VARCHAR(64) NOT NULL, \
             handle VARCHAR(255) CHARACTER SET ascii NOT NULL, function VARBINARY(512) NOT NULL, \
             row_unique VARBINARY(255) NOT NULL, state VARCHAR(16) NOT NULL, submitted BIGINT NOT NULL, \
             finished BIGINT NULL, body LONGBLOB NOT NULL, PRIMARY KEY (namespace, handle), \
             KEY sprocket_records_by_end (namespace, finished), \
             KEY sprocket_records_by_function (namespace, function, state, finished), \
             KEY sprocket_records_by_row (namespace, function, row_unique)) ENGINE=InnoDB"
                .into(),
            "CREATE TABLE IF NOT EXISTS sprocket_handles (namespace VARCHAR(64) PRIMARY KEY, \
             next_handle BIGINT NOT NULL) ENGINE=InnoDB"
                .into(),
        ],
    }
}

/// The statements of one Redis step, given the key prefix.
pub type RedisStep = fn(&[u8]) -> Vec<::redis::Cmd>;

/// The steps of sprocketd's key layout in Redis.
///
/// Version 1 is the layout of the job hash (gearmand's two fields) with a
/// side hash for what it cannot hold. Keys of older layouts (gearmand's,
/// and sprocketd's before the side hash) are read as they are and never
/// rewritten, so reaching version 1 takes no commands.
///
/// Version 2 adds job records (see `redis::record_key`): keys made when
/// first written, so reaching it takes no commands either.
///
/// Version 3 adds operator settings, a hash per kind (see
/// `redis::settings_key`), also made when first written.
pub const REDIS_MIGRATIONS: &[Migration<RedisStep>] = &[
    Migration { version: 1, purpose: "job hashes with gearmand's fields and side hashes", step: |_| Vec::new() },
    Migration { version: 2, purpose: "job records and the handle counter", step: |_| Vec::new() },
    Migration { version: 3, purpose: "operator settings", step: |_| Vec::new() },
    // Dead records' handles go to a sorted set of their own, made when
    // first written; no dead record existed before, so nothing moves.
    Migration { version: 4, purpose: "dead records in a sorted set of their own", step: |_| Vec::new() },
];

/// The version of sprocketd's tables in the SQL databases this build writes.
pub const SCHEMA_VERSION: i64 = latest(SQL_MIGRATIONS);

/// The version of sprocketd's Redis key layout this build writes.
pub const REDIS_LAYOUT_VERSION: i64 = latest(REDIS_MIGRATIONS);

const fn latest<S>(list: &[Migration<S>]) -> i64 {
    match list.last() {
        Some(m) => m.version,
        None => 0,
    }
}

/// The steps of `list` a layout at `recorded` still needs, in order; an
/// error when `recorded` is newer than the list knows (a newer sprocketd
/// wrote it, and this one could damage it). `what` names the layout for
/// the message.
pub fn pending<S>(list: &'static [Migration<S>], what: &str, recorded: i64) -> Result<&'static [Migration<S>]> {
    let newest = latest(list);
    if recorded > newest {
        return Err(StoreError::Config(format!(
            "{what} has schema version {recorded}, newer than this sprocketd understands ({newest}); \
             run the sprocketd that wrote it, or a newer one"
        )));
    }
    let from = list.iter().position(|m| m.version > recorded).unwrap_or(list.len());
    Ok(&list[from..])
}

/// A connection to an SQL database seen by the migration runner: the
/// statements that bind values, whose syntax differs between drivers, and
/// the dialect of the rest.
#[async_trait::async_trait]
pub(crate) trait Catalog: Send {
    /// The database's dialect.
    fn dialect(&self) -> Dialect;

    /// Runs one statement without parameters.
    async fn execute(&mut self, sql: &str) -> Result<()>;

    /// Inserts the queue table's `sprocket_meta` row with version 0 if it
    /// has none, and reads its version, locking the row until the
    /// transaction ends where the database can, so that two servers
    /// starting at once migrate one after the other.
    async fn recorded_version(&mut self) -> Result<i64>;

    /// Records `version` in the queue table's `sprocket_meta` row.
    async fn record_version(&mut self, version: i64) -> Result<()>;
}

impl Dialect {
    /// The statement that creates `sprocket_meta` if it is missing; its
    /// layout is the same in every version.
    fn create_meta(self) -> &'static str {
        match self {
            Dialect::Sqlite | Dialect::Postgres => {
                "CREATE TABLE IF NOT EXISTS sprocket_meta (queue_table TEXT PRIMARY KEY, schema_version INTEGER NOT NULL)"
            }
            Dialect::Mysql => {
                "CREATE TABLE IF NOT EXISTS sprocket_meta (queue_table VARCHAR(64) PRIMARY KEY, \
                 schema_version INT NOT NULL) ENGINE=InnoDB"
            }
        }
    }

    /// The statement that starts the migration's transaction: SQLite's
    /// takes the write lock at once, so no other writer can come between
    /// reading the version and recording the new one.
    fn begin(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            // The record tables are shared by every queue table of the
            // database, so two servers migrating their own queue tables at
            // once would change them at once (and deadlock, both dropping
            // and creating the same indexes): a transaction-scoped advisory
            // lock makes them take turns.
            Dialect::Postgres => "BEGIN; SELECT pg_advisory_xact_lock(7283504100)",
            Dialect::Mysql => "START TRANSACTION",
        }
    }
}

/// Brings sprocketd's tables beside the queue table `table` (`quoted` for
/// the dialect) to [`SCHEMA_VERSION`]: creates `sprocket_meta` if missing,
/// then, in one transaction, runs the steps above the recorded version and
/// records the version reached. Returns the version found.
pub(crate) async fn migrate(db: &mut dyn Catalog, table: &str, quoted: &str) -> Result<i64> {
    let dialect = db.dialect();
    db.execute(dialect.create_meta()).await?;
    db.execute(dialect.begin()).await?;
    match run_steps(db, table, quoted).await {
        Ok(found) => {
            db.execute("COMMIT").await?;
            Ok(found)
        }
        Err(e) => {
            // Best effort: a lost connection has rolled back already.
            let _ = db.execute("ROLLBACK").await;
            Err(e)
        }
    }
}

async fn run_steps(db: &mut dyn Catalog, table: &str, quoted: &str) -> Result<i64> {
    let dialect = db.dialect();
    let found = db.recorded_version().await?;
    let steps = pending(SQL_MIGRATIONS, &format!("table {table}"), found)?;
    for migration in steps {
        tracing::info!(table, version = migration.version, "migrating sprocketd's tables: {}", migration.purpose);
        for sql in (migration.step)(dialect, quoted) {
            db.execute(&sql).await?;
        }
    }
    if let Some(last) = steps.last() {
        db.record_version(last.version).await?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered<S>(list: &[Migration<S>]) -> bool {
        list.iter().enumerate().all(|(i, m)| m.version == i as i64 + 1)
    }

    #[test]
    fn steps_are_numbered_from_one_in_order() {
        assert!(numbered(SQL_MIGRATIONS));
        assert!(numbered(REDIS_MIGRATIONS));
        assert_eq!(SCHEMA_VERSION, SQL_MIGRATIONS.len() as i64);
    }

    #[test]
    fn pending_steps_start_above_the_recorded_version() {
        assert_eq!(pending(SQL_MIGRATIONS, "t", 0).map(<[_]>::len).ok(), Some(SQL_MIGRATIONS.len()));
        assert_eq!(pending(SQL_MIGRATIONS, "t", SCHEMA_VERSION).map(<[_]>::len).ok(), Some(0));
        let err = pending(SQL_MIGRATIONS, "table q", SCHEMA_VERSION + 1).err().map(|e| e.to_string());
        let err = err.unwrap_or_default();
        let want = format!(
            "table q has schema version {}, newer than this sprocketd understands ({SCHEMA_VERSION})",
            SCHEMA_VERSION + 1
        );
        assert!(err.contains(&want), "{err}");
    }
}
