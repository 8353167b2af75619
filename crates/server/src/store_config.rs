//! Chooses the store from the flags: Sprocket's durable default, or one
//! of gearmand's queue types with gearmand's option names.

use std::path::PathBuf;

use sprocket_engine::PersistMode;
use sprocket_store::{StoreConfig, SyncMode};

use crate::config::ConfigError;
use crate::flags::Flags;

/// The store to open (None: memory only) and how jobs are persisted.
#[derive(Debug, Clone)]
pub struct StoreChoice {
    /// The store to open; `None` keeps jobs in memory only.
    pub config: Option<StoreConfig>,
    /// When jobs are written to it.
    pub persist: PersistMode,
}

/// Where the default SQLite store lives when `--data-dir` is not given:
/// `/var/lib/sprocket` for root, else `$XDG_DATA_HOME/sprocket` or
/// `~/.local/share/sprocket`.
pub fn default_data_dir() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/sprocket");
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("sprocket");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/sprocket"),
        None => PathBuf::from("./sprocket-data"),
    }
}

/// The default store's file name: one queue per port, so a restart on the
/// same port finds its jobs and two servers on different ports never
/// replay each other's.
pub fn default_queue_file(port: u16) -> String {
    format!("sprocket-{port}.db")
}

/// The store `-q` and its options describe.
pub fn choose(flags: &Flags, extra: &ExtraQueueFlags) -> Result<StoreChoice, ConfigError> {
    let port = crate::config::effective_port(flags);
    let sync = if flags.sync == "normal" { SyncMode::Normal } else { SyncMode::Full };
    let data_dir = || flags.data_dir.clone().unwrap_or_else(default_data_dir);
    let sqlite_in_data_dir = || -> Result<StoreConfig, ConfigError> {
        let dir = data_dir();
        std::fs::create_dir_all(&dir).map_err(|source| ConfigError::DataDirectory { dir: dir.clone(), source })?;
        Ok(StoreConfig::Sqlite {
            path: dir.join(default_queue_file(port)),
            table: flags.libsqlite3_table.clone(),
            sync,
        })
    };
    let kind = flags.queue_type.clone().unwrap_or_else(|| "sqlite".into()).to_ascii_lowercase();
    let config = match kind.as_str() {
        "builtin" | "memory" | "none" => None,
        "sqlite" | "libsqlite3" | "sqlite3" => Some(match &flags.libsqlite3_db {
            Some(path) => StoreConfig::Sqlite { path: path.clone(), table: flags.libsqlite3_table.clone(), sync },
            None => sqlite_in_data_dir()?,
        }),
        "postgres" | "postgresql" | "libpq" | "pg" => {
            Some(StoreConfig::Postgres { conninfo: flags.libpq_conninfo.clone(), table: flags.libpq_table.clone() })
        }
        "mysql" | "mariadb" => Some(StoreConfig::Mysql {
            host: flags.mysql_host.clone(),
            port: flags.mysql_port,
            user: flags.mysql_user.clone(),
            password: flags.mysql_password.clone(),
            db: flags.mysql_db.clone(),
            table: flags.mysql_table.clone(),
        }),
        // gearmand's legacy libdrizzle queue spoke MySQL; its flags map
        // onto the MySQL backend (old walkthroughs, such as "Playing with
        // Gearman" and the Gearman-and-Mongo job queue, still use them).
        "libdrizzle" | "drizzle" => Some(StoreConfig::Mysql {
            host: extra.drizzle_host.clone(),
            port: extra.drizzle_port,
            user: extra.drizzle_user.clone(),
            password: extra.drizzle_password.clone(),
            db: extra.drizzle_db.clone(),
            table: extra.drizzle_table.clone(),
        }),
        "redis" | "hiredis" => Some(StoreConfig::Redis {
            host: flags.redis_server.clone(),
            port: flags.redis_port,
            password: flags.redis_password.clone(),
            prefix: flags.redis_prefix.clone(),
        }),
        other => return Err(ConfigError::UnknownQueueType(other.to_string())),
    };
    let persist = match (&config, flags.store_queue_on_shutdown) {
        (None, _) => PersistMode::None,
        (Some(_), true) => PersistMode::OnShutdown,
        (Some(_), false) => PersistMode::Immediate,
    };
    Ok(StoreChoice { config, persist })
}

/// gearmand's libdrizzle options (its MySQL-protocol queue).
#[derive(Debug, Clone, clap::Args)]
pub struct ExtraQueueFlags {
    /// MySQL host of gearmand's libdrizzle queue (`-q libdrizzle`, served
    /// by the MySQL backend).
    #[arg(long = "libdrizzle-host", default_value = "localhost")]
    pub drizzle_host: String,
    /// MySQL port of the libdrizzle queue.
    #[arg(long = "libdrizzle-port", default_value_t = 3306)]
    pub drizzle_port: u16,
    /// Unix socket of the libdrizzle queue (accepted; connections use TCP).
    #[arg(long = "libdrizzle-uds")]
    pub drizzle_uds: Option<String>,
    /// MySQL user of the libdrizzle queue.
    #[arg(long = "libdrizzle-user", default_value = "root")]
    pub drizzle_user: String,
    /// MySQL password of the libdrizzle queue.
    #[arg(long = "libdrizzle-password", default_value = "")]
    pub drizzle_password: String,
    /// MySQL database of the libdrizzle queue.
    #[arg(long = "libdrizzle-db", default_value = "gearman")]
    pub drizzle_db: String,
    /// Table of the libdrizzle queue.
    #[arg(long = "libdrizzle-table", default_value = "queue")]
    pub drizzle_table: String,
    /// Accepted: the queue always speaks MySQL.
    #[arg(long = "libdrizzle-mysql")]
    pub drizzle_mysql: bool,
}
