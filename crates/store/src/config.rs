//! Which backend to use, and opening it.

use std::path::PathBuf;

use crate::{memory, mysql, postgres, redis, sqlite, Result, Store};

/// How hard SQLite works to make a commit durable before it is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// `PRAGMA synchronous=FULL`: the WAL is fsynced at every commit, so a
    /// reported job survives power loss.
    #[default]
    Full,
    /// `PRAGMA synchronous=NORMAL`: the commit reaches the OS but is not
    /// fsynced; it survives a crash or `kill -9` of the server, and the OS
    /// writes it back within its dirty-page expiry time.
    Normal,
}

/// A backend and its settings, as given by the server's flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// Keeps rows in process memory (tests; nothing survives a restart).
    Memory,
    /// `-q libsqlite3 --libsqlite3-db PATH --libsqlite3-table TABLE`.
    Sqlite {
        /// The database file, created if missing.
        path: PathBuf,
        /// The queue table in it.
        table: String,
        /// How each commit is made durable (`--sync`).
        sync: SyncMode,
    },
    /// `-q postgres --libpq-conninfo STR --libpq-table TABLE`, with the PG*
    /// environment variables under the conninfo string.
    Postgres {
        /// libpq's key=value or URL form.
        conninfo: String,
        /// The queue table, folded to lower case unless it needs quotes.
        table: String,
    },
    /// `-q mysql --mysql-host … --mysql-table …`.
    Mysql {
        /// Server host name or address (`localhost` on port 3306 means the
        /// local socket where there is one, as for libmysqlclient).
        host: String,
        /// Server port.
        port: u16,
        /// User name; empty for the server's default.
        user: String,
        /// Password; empty for none.
        password: String,
        /// The database that holds the queue table (required).
        db: String,
        /// The queue table.
        table: String,
    },
    /// `-q redis --redis-server … --redis-prefix …`.
    Redis {
        /// Server host name or address.
        host: String,
        /// Server port.
        port: u16,
        /// Sent with AUTH when given.
        password: Option<String>,
        /// The start of every job's key (`<prefix>-<function>-<unique>`).
        prefix: String,
    },
}

impl StoreConfig {
    /// gearmand's default SQLite table name.
    pub const SQLITE_DEFAULT_TABLE: &'static str = "gearman_queue";
    /// gearmand's default PostgreSQL table name.
    pub const POSTGRES_DEFAULT_TABLE: &'static str = "queue";
    /// gearmand's default MySQL table name.
    pub const MYSQL_DEFAULT_TABLE: &'static str = "gearman_queue";
    /// gearmand's default Redis key prefix.
    pub const REDIS_DEFAULT_PREFIX: &'static str = "_gear_";
}

/// Opens the configured backend: connects, creates the table if missing and
/// checks it. A database that cannot be reached gives
/// [`crate::StoreError::Unavailable`] with a message naming it.
pub async fn open(config: &StoreConfig) -> Result<Box<dyn Store>> {
    Ok(match config {
        StoreConfig::Memory => Box::new(memory::MemoryStore::new()),
        StoreConfig::Sqlite { path, table, sync } => Box::new(sqlite::SqliteStore::open(path, table, *sync).await?),
        StoreConfig::Postgres { conninfo, table } => Box::new(postgres::PostgresStore::open(conninfo, table).await?),
        StoreConfig::Mysql { host, port, user, password, db, table } => {
            Box::new(mysql::MysqlStore::open(mysql::MysqlSettings::new(host, *port, user, password, db, table)).await?)
        }
        StoreConfig::Redis { host, port, password, prefix } => {
            Box::new(redis::RedisStore::open(host, *port, password.as_deref(), prefix).await?)
        }
    })
}
