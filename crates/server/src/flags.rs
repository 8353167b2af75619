//! Command-line flags: gearmand 1.1.20's, so an existing
//! `/etc/default/gearman-job-server` PARAMS line works, plus Sprocket's own.

use std::path::PathBuf;

use clap::{ArgAction, Parser};

/// sprocketd — a Gearman job server, drop-in for gearmand.
#[derive(Debug, Clone, Parser)]
// `args_override_self`: a flag given twice takes its last value (`-v` still
// counts), so the command line (parsed after the config file's words) wins
// over the file, as with gearmand, and a service wrapper can put its own
// defaults before an administrator's PARAMS line and the flags it must
// control after it (Debian's stock PARAMS already holds `--daemon` and a
// `--log-file`).
#[command(
    name = "sprocketd",
    version,
    about,
    disable_help_flag = true,
    disable_version_flag = true,
    args_override_self = true
)]
pub struct Flags {
    /// Print this help.
    #[arg(short = 'h', long = "help", action = ArgAction::Help)]
    pub help: Option<bool>,
    /// Print the version.
    #[arg(short = 'V', long = "version")]
    pub version: bool,

    // ---- gearmand general options ----
    /// Number of backlog connections for listen() (gearmand: 32; a larger
    /// default keeps bursts of new connections from being dropped).
    #[arg(help_heading = "gearmand options", short = 'b', long, default_value_t = 1024)]
    pub backlog: u32,
    /// Detach and run in the background.
    #[arg(help_heading = "gearmand options", short = 'd', long)]
    pub daemon: bool,
    /// New connections start with exceptions enabled.
    #[arg(help_heading = "gearmand options", long)]
    pub exceptions: bool,
    /// Set the file-descriptor limit (soft, and hard if needed).
    #[arg(help_heading = "gearmand options", short = 'f', long = "file-descriptors")]
    pub file_descriptors: Option<u64>,
    /// Most attempts before a job is dropped; 0 = unlimited.
    #[arg(help_heading = "gearmand options", short = 'j', long = "job-retries", default_value_t = 0)]
    pub job_retries: u32,
    /// Prefix of job handles: handles are `<prefix>:<n>` (default
    /// `H:<hostname>`). At most 42 bytes, so every handle stays under
    /// gearmand's 64-byte limit.
    #[arg(help_heading = "gearmand options", long = "job-handle-prefix")]
    pub job_handle_prefix: Option<String>,
    /// Accepted for compatibility (hash tables grow as needed).
    #[arg(help_heading = "gearmand options", long = "hashtable-buckets")]
    pub hashtable_buckets: Option<u64>,
    /// Enable TCP keepalive on accepted connections.
    #[arg(help_heading = "gearmand options", long)]
    pub keepalive: bool,
    /// Seconds a connection is idle before keepalive probes start (-1 =
    /// the system's default; at most 32767, Linux's limit).
    #[arg(help_heading = "gearmand options", long = "keepalive-idle", default_value_t = -1, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i64).range(-1..=32767))]
    pub keepalive_idle: i64,
    /// Seconds between keepalive probes (-1 = the system's default; at
    /// most 32767).
    #[arg(help_heading = "gearmand options", long = "keepalive-interval", default_value_t = -1, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i64).range(-1..=32767))]
    pub keepalive_interval: i64,
    /// Unanswered probes before the connection is dropped (-1 = the
    /// system's default; at most 127, Linux's limit).
    #[arg(help_heading = "gearmand options", long = "keepalive-count", default_value_t = -1, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i64).range(-1..=127))]
    pub keepalive_count: i64,
    /// Log file; `stderr` (default) or `none` are special.
    #[arg(help_heading = "gearmand options", short = 'l', long = "log-file", default_value = "stderr")]
    pub log_file: String,
    /// Address to listen on (all addresses it resolves to); default all.
    #[arg(help_heading = "gearmand options", short = 'L', long)]
    pub listen: Option<String>,
    /// Port for the Gearman protocol and admin commands.
    #[arg(help_heading = "gearmand options", short = 'p', long, default_value_t = 4730)]
    pub port: u16,
    /// Write the process id to this file; removed on exit.
    #[arg(help_heading = "gearmand options", short = 'P', long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Extra protocol module: `http` serves gearmand's HTTP job
    /// submission on --http-port (gearmand's only module).
    #[arg(help_heading = "gearmand options", short = 'r', long)]
    pub protocol: Option<String>,
    /// Rotate a worker's functions after each hand-out.
    #[arg(help_heading = "gearmand options", short = 'R', long = "round-robin")]
    pub round_robin: bool,
    /// Queue type: sqlite (default, durable), builtin (memory only),
    /// libsqlite3, postgres/libpq, mysql, redis.
    #[arg(help_heading = "gearmand options", short = 'q', long = "queue-type")]
    pub queue_type: Option<String>,
    /// File of flags read before the command line, which wins over it
    /// (default /etc/sprocketd.conf, ignored when missing). Words are split
    /// and quoted as a shell does; `#` starts a comment to the end of the line.
    #[arg(help_heading = "gearmand options", long = "config-file")]
    pub config_file: Option<PathBuf>,
    /// Also send every log line to the local syslog daemon (/dev/log).
    #[arg(help_heading = "gearmand options", long)]
    pub syslog: bool,
    /// Leave crash signals alone (accepted; Rust does not catch them).
    #[arg(help_heading = "gearmand options", long)]
    pub coredump: bool,
    /// Threads for connection I/O (0 = number of CPUs). The engine is one
    /// task either way; with 1 (the default) everything shares one thread
    /// and no work crosses threads, which is fastest on small machines.
    #[arg(help_heading = "gearmand options", short = 't', long, default_value_t = 1)]
    pub threads: usize,
    /// Switch to this user after binding (requires root).
    #[arg(help_heading = "gearmand options", short = 'u', long)]
    pub user: Option<String>,
    /// Log level: FATAL, ALERT, CRITICAL, ERROR (default), WARNING, NOTICE,
    /// INFO, DEBUG. Alone, it means INFO. May be repeated (the last wins).
    #[arg(help_heading = "gearmand options", long, num_args = 0..=1, default_missing_value = "INFO", overrides_with = "verbose")]
    pub verbose: Option<String>,
    /// More verbose logging (repeatable).
    #[arg(help_heading = "gearmand options", short = 'v', action = ArgAction::Count)]
    pub more_verbose: u8,
    /// NOOPs sent per queued job; 0 wakes every sleeping worker.
    #[arg(help_heading = "gearmand options", short = 'w', long = "worker-wakeup", default_value_t = 0)]
    pub worker_wakeup: u32,
    /// Validate the options and exit.
    #[arg(help_heading = "gearmand options", long = "check-args", hide = true)]
    pub check_args: bool,

    // ---- SSL and HTTP (accepted, not yet supported) ----
    /// TLS on the Gearman port: it then accepts TLS connections only,
    /// admin ones too (see --ssl-port for a TLS port beside a plain one).
    #[arg(help_heading = "TLS (gearmand's flags, and Sprocket's)", long)]
    pub ssl: bool,
    /// CA certificate file that client certificates must be signed by
    /// (read with --ssl-verify-clients). Default: $GEARMAND_CA_CERTIFICATE,
    /// else /etc/ssl/certs/gearmand-ca.pem.
    #[arg(help_heading = "TLS (gearmand's flags, and Sprocket's)", long = "ssl-ca-file")]
    pub ssl_ca_file: Option<String>,
    /// Server certificate file (PEM; the chain may follow the
    /// certificate). Default: $GEARMAND_SERVER_PEM, else
    /// /etc/ssl/certs/gearmand.pem.
    #[arg(help_heading = "TLS (gearmand's flags, and Sprocket's)", long = "ssl-certificate")]
    pub ssl_certificate: Option<String>,
    /// Server private key file (PEM). Default: $GEARMAND_SERVER_KEY, else
    /// /etc/ssl/certs/gearmand.key.
    #[arg(help_heading = "TLS (gearmand's flags, and Sprocket's)", long = "ssl-key")]
    pub ssl_key: Option<String>,
    /// Also listen for TLS on this port, beside the plain Gearman port
    /// (local workers can stay on plaintext over loopback).
    #[arg(help_heading = "TLS (gearmand's flags, and Sprocket's)", long = "ssl-port", value_name = "PORT")]
    pub ssl_port: Option<u16>,
    /// Require a client certificate signed by the CA file; the
    /// certificate's common name (or first DNS name) is the connection's
    /// identity.
    #[arg(help_heading = "TLS (gearmand's flags, and Sprocket's)", long = "ssl-verify-clients")]
    pub ssl_verify_clients: bool,
    /// Access control list in geard's format: one section per identity
    /// (certificate name, or `net:CIDR` for plaintext peers) with
    /// `register`, `invoke`, `grant` and `admin` keys. Whatever it does
    /// not grant is denied; implies --ssl-verify-clients on TLS ports.
    /// Reread on SIGHUP.
    #[arg(help_heading = "TLS (gearmand's flags, and Sprocket's)", long = "acl-file", value_name = "PATH")]
    pub acl_file: Option<PathBuf>,
    /// Per-function policies (retries, backoff, run limit, dead letters)
    /// and recurring jobs (cron), in TOML (see docs/operations.md). An
    /// unusable file stops start-up; reread on SIGHUP, where an unusable
    /// file is logged and what is in force stays.
    #[arg(help_heading = "Sprocket's own options", long = "policy-file", value_name = "PATH")]
    pub policy_file: Option<PathBuf>,
    /// Seconds a new TLS connection has to finish its handshake before it
    /// is dropped (1 to 3600).
    #[arg(help_heading = "TLS (gearmand's flags, and Sprocket's)", long = "ssl-handshake-timeout", value_name = "SECONDS",
          default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub ssl_handshake_timeout: u64,
    /// Port of gearmand's HTTP protocol module (`-r http`), on the
    /// --listen address.
    #[arg(
        help_heading = "gearmand compatibility: HTTP protocol (-r http)",
        long = "http-port",
        default_value_t = 8080
    )]
    pub http_port: u16,
    /// Seconds a foreground request on the --http-port waits for its
    /// job's result before it is answered 504 (the job goes on; 1 to
    /// 86400).
    #[arg(help_heading = "gearmand compatibility: HTTP protocol (-r http)", long = "http-wait", value_name = "SECONDS",
          default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub http_wait: u64,

    // ---- queue options (gearmand names) ----
    /// SQLite file of the queue (`-q libsqlite3`; default: the data
    /// directory's sprocket-<port>.db).
    #[arg(help_heading = "gearmand compatibility: SQLite queue (-q libsqlite3)", long = "libsqlite3-db")]
    pub libsqlite3_db: Option<PathBuf>,
    /// Table of the SQLite queue.
    #[arg(
        help_heading = "gearmand compatibility: SQLite queue (-q libsqlite3)",
        long = "libsqlite3-table",
        default_value = "gearman_queue"
    )]
    pub libsqlite3_table: String,
    /// Write the queue only at shutdown (SQLite), as gearmand's option does.
    #[arg(help_heading = "gearmand compatibility: SQLite queue (-q libsqlite3)", long = "store-queue-on-shutdown")]
    pub store_queue_on_shutdown: bool,
    /// PostgreSQL connection string (`-q libpq`/`postgres`); empty uses the
    /// PG* environment variables.
    #[arg(
        help_heading = "gearmand compatibility: PostgreSQL queue (-q libpq)",
        long = "libpq-conninfo",
        default_value = ""
    )]
    pub libpq_conninfo: String,
    /// Table of the PostgreSQL queue.
    #[arg(
        help_heading = "gearmand compatibility: PostgreSQL queue (-q libpq)",
        long = "libpq-table",
        default_value = "queue"
    )]
    pub libpq_table: String,
    /// MySQL/MariaDB host (`-q mysql`).
    #[arg(
        help_heading = "gearmand compatibility: MySQL/MariaDB queue (-q mysql)",
        long = "mysql-host",
        default_value = "localhost"
    )]
    pub mysql_host: String,
    /// MySQL/MariaDB port.
    #[arg(
        help_heading = "gearmand compatibility: MySQL/MariaDB queue (-q mysql)",
        long = "mysql-port",
        default_value_t = 3306
    )]
    pub mysql_port: u16,
    /// MySQL/MariaDB user.
    #[arg(
        help_heading = "gearmand compatibility: MySQL/MariaDB queue (-q mysql)",
        long = "mysql-user",
        default_value = ""
    )]
    pub mysql_user: String,
    /// MySQL/MariaDB password.
    #[arg(
        help_heading = "gearmand compatibility: MySQL/MariaDB queue (-q mysql)",
        long = "mysql-password",
        default_value = ""
    )]
    pub mysql_password: String,
    /// MySQL/MariaDB database.
    #[arg(
        help_heading = "gearmand compatibility: MySQL/MariaDB queue (-q mysql)",
        long = "mysql-db",
        default_value = ""
    )]
    pub mysql_db: String,
    /// Table of the MySQL/MariaDB queue.
    #[arg(
        help_heading = "gearmand compatibility: MySQL/MariaDB queue (-q mysql)",
        long = "mysql-table",
        default_value = "gearman_queue"
    )]
    pub mysql_table: String,
    /// Redis host (`-q redis`).
    #[arg(
        help_heading = "gearmand compatibility: Redis queue (-q redis)",
        long = "redis-server",
        default_value = "127.0.0.1"
    )]
    pub redis_server: String,
    /// Redis port.
    #[arg(
        help_heading = "gearmand compatibility: Redis queue (-q redis)",
        long = "redis-port",
        default_value_t = 6379
    )]
    pub redis_port: u16,
    /// Redis password (AUTH).
    #[arg(help_heading = "gearmand compatibility: Redis queue (-q redis)", long = "redis-password")]
    pub redis_password: Option<String>,
    /// Prefix of the Redis keys that hold jobs.
    #[arg(
        help_heading = "gearmand compatibility: Redis queue (-q redis)",
        long = "redis-prefix",
        default_value = "_gear_"
    )]
    pub redis_prefix: String,

    // ---- Sprocket's own ----
    /// Directory of the default SQLite store.
    #[arg(help_heading = "Sprocket's own options", long = "data-dir")]
    pub data_dir: Option<PathBuf>,
    /// Durability: `full` (fsync before JOB_CREATED; survives power loss)
    /// or `normal` (survives a crash of sprocketd).
    #[arg(help_heading = "Sprocket's own options", long, default_value = "full", value_parser = ["full", "normal"])]
    pub sync: String,
    /// Connections the store writer commits on at once (0 = the backend's
    /// choice: 4 for Redis, 1 for PostgreSQL and MySQL, whose commits on
    /// one table measured fastest batched on one connection). SQLite has
    /// a single writer whatever this says.
    #[arg(help_heading = "Sprocket's own options", long = "store-connections", default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=64))]
    pub store_connections: u16,
    /// Seconds a background submit waits for the store (a hung disk or
    /// database) before its client gets an error instead (0 = for ever; at
    /// most 31536000, a year).
    #[arg(help_heading = "Sprocket's own options", long = "store-timeout", default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=MAX_STORE_TIMEOUT_SECS))]
    pub store_timeout: u64,
    /// Largest packet body accepted, in bytes (at most 4294901760: a job's
    /// handle must still fit beside its data in one packet).
    #[arg(help_heading = "Sprocket's own options", long = "max-packet-size", default_value_t = sprocket_proto::DEFAULT_MAX_PACKET_SIZE,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PACKET_SIZE_LIMIT)))]
    pub max_packet_size: u32,
    /// Most bytes of output that may wait for one peer (0 = no limit;
    /// raised to twice --max-packet-size). A peer that reads is never cut
    /// off below it; one holding over 64 MiB that takes nothing for 30 s is.
    #[arg(help_heading = "Sprocket's own options", long = "max-reply-backlog", default_value_t = 1 << 30)]
    pub max_reply_backlog: u64,
    /// Most bytes of output that may wait for all peers together (0 = no
    /// limit; default: a quarter of the memory the process may use). Over
    /// it, a peer given more while it has over 1 MiB waiting is cut off.
    #[arg(help_heading = "Sprocket's own options", long = "max-total-reply-backlog", value_name = "BYTES")]
    pub max_total_reply_backlog: Option<u64>,
    /// After handling anything, keep polling the sockets for this many
    /// microseconds before sleeping, so the next packet is read without a
    /// wake-up (0 = always sleep at once; at most 1000000). Default: 50, or
    /// 0 when the process may use only one CPU. Only with one thread (`-t 1`).
    #[arg(help_heading = "Sprocket's own options", long = "busy-poll", value_name = "MICROSECONDS", value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub busy_poll: Option<u64>,
    /// Most simultaneous connections; further ones are refused.
    #[arg(help_heading = "Sprocket's own options", long = "max-connections", default_value_t = 65_536)]
    pub max_connections: usize,
    /// Default queue limit per function and priority (0 = none; admin
    /// `maxqueue` overrides it per function).
    #[arg(help_heading = "Sprocket's own options", long = "max-queue", default_value_t = 0)]
    pub max_queue: u32,
    /// Most jobs in the whole server (0 = none).
    #[arg(help_heading = "Sprocket's own options", long = "max-jobs", default_value_t = 0)]
    pub max_jobs: usize,
    /// When a CAN_DO_TIMEOUT limit expires: `retry` requeues the job for
    /// another worker, counting an attempt against --job-retries (gearmand
    /// 1.1.20's behaviour, the default); `fail` ends it with WORK_FAIL.
    #[arg(help_heading = "Sprocket's own options", long = "timeout-action", default_value = "retry", value_parser = ["retry", "fail"])]
    pub timeout_action: String,
    /// Where the web port (JSON API, Prometheus /metrics) listens:
    /// ADDR:PORT, or `none`. Default 127.0.0.1:4780; when that default is
    /// taken the server runs without a web port, while an address given
    /// here that cannot be bound stops start-up. Any address but loopback
    /// needs --web-token or --acl-file (or --web-insecure).
    #[arg(help_heading = "Sprocket's own options", long = "web-listen", value_name = "ADDR:PORT|none")]
    pub web_listen: Option<String>,
    /// The web port's secret, sent as a Bearer token or as the Basic
    /// password (any user name); read from the file when it starts with /.
    /// With --acl-file it is the operator's: every right, whatever the ACL.
    #[arg(help_heading = "Sprocket's own options", long = "web-token", value_name = "TOKEN|/FILE")]
    pub web_token: Option<String>,
    /// Serve the web port on an address other hosts reach without a token.
    #[arg(help_heading = "Sprocket's own options", long = "web-insecure")]
    pub web_insecure: bool,
    /// Serve the web port over TLS (HTTPS) with the Gearman port's
    /// certificate and key (--ssl-certificate, --ssl-key; reloaded on
    /// SIGHUP). With --ssl-verify-clients or an ACL, a client certificate
    /// is asked for and verified, but not required.
    #[arg(help_heading = "Sprocket's own options", long = "web-tls")]
    pub web_tls: bool,
    /// Write one JSON line per ended job to this file (`-` for standard
    /// output): time, handle, function, unique, state, attempts, queue
    /// wait, run time, worker, error text. Reopened on SIGHUP.
    #[arg(help_heading = "Sprocket's own options", long = "job-log", value_name = "PATH")]
    pub job_log: Option<String>,
    /// Add each completed job's result to its --job-log line.
    #[arg(help_heading = "Sprocket's own options", long = "job-log-results")]
    pub job_log_results: bool,
    /// Accepted for older command lines and does nothing: the history is
    /// kept unless --no-history is given.
    #[arg(help_heading = "Sprocket's own options", long = "history")]
    pub history: bool,
    /// Keep no per-function history of ended jobs. Without this flag the
    /// server counts ended jobs by outcome with queue wait and run time
    /// percentiles over the last minute, hour, day and week (admin
    /// `history`, the API's /api/v1/history, the dashboard's chart), saved
    /// in --data-dir (or beside the SQLite queue).
    #[arg(help_heading = "Sprocket's own options", long = "no-history")]
    pub no_history: bool,
    /// Which jobs get a record (their result, data, attempts and end, kept
    /// in the store the queue uses and read with `sprocket.result`,
    /// `sprocket.record` and admin `record`): background jobs, every job,
    /// or none.
    #[arg(help_heading = "Sprocket's own options", long = "records", default_value = "background",
          value_parser = ["background", "all", "none"])]
    pub records: String,
    /// How long the record of an ended job is kept, such as 7d, 12h, 90m.
    #[arg(help_heading = "Sprocket's own options", long = "record-retention", value_name = "DURATION",
          default_value = "7d", value_parser = parse_retention)]
    pub record_retention: std::time::Duration,
    /// How long the record of a dead job (a dead letter: out of attempts
    /// under a retry policy) is kept, such as 30d; --record-retention is
    /// for the other ended jobs.
    #[arg(help_heading = "Sprocket's own options", long = "dead-retention", value_name = "DURATION",
          default_value = "30d", value_parser = parse_retention)]
    pub dead_retention: std::time::Duration,
    /// Most bytes of data, warnings and result one record keeps; beyond it
    /// they are kept cut, and the record says how much arrived.
    #[arg(help_heading = "Sprocket's own options", long = "record-max-bytes", value_name = "BYTES",
          default_value_t = sprocket_records::record::DEFAULT_MAX_BYTES,
          value_parser = clap::value_parser!(u64).range(0..=1 << 30))]
    pub record_max_bytes: u64,
    /// Most ended records kept in memory (with -q builtin, where no store
    /// keeps them); the oldest go first.
    #[arg(help_heading = "Sprocket's own options", long = "record-max-count", value_name = "N",
          default_value_t = sprocket_records::memory::DEFAULT_MAX_COUNT,
          value_parser = clap::value_parser!(usize))]
    pub record_max_count: usize,

    #[command(flatten, next_help_heading = "gearmand compatibility: libdrizzle MySQL queue (-q libdrizzle)")]
    pub drizzle: crate::store_config::ExtraQueueFlags,
}

/// `--record-retention`: a duration of at least one second.
fn parse_retention(text: &str) -> Result<std::time::Duration, String> {
    let d = sprocket_records::parse_duration(text).map_err(|e| e.to_string())?;
    if d < std::time::Duration::from_secs(1) {
        return Err(format!("{text:?} is shorter than a second"));
    }
    Ok(d)
}

/// Longest `--job-handle-prefix`: a handle is `<prefix>:<n>` with `n` up to
/// 20 digits, and gearmand's clients and sprocketd's GET_STATUS take handles
/// of at most 63 bytes (64 with the terminating NUL gearmand formats into).
pub const MAX_HANDLE_PREFIX: usize = 63 - 1 - 20;

/// Largest `--max-packet-size`: packets that carry a job handle beside the
/// job's data may be up to 1 KiB larger than the limit, and their size must
/// still fit the packet header's 32 bits.
pub const MAX_PACKET_SIZE_LIMIT: u32 = u32::MAX - 0xffff;

/// Largest `--store-timeout`, in seconds (a year); larger values would not
/// fit the engine's millisecond clock arithmetic and mean "for ever"
/// anyway, for which 0 is the way to say it.
pub const MAX_STORE_TIMEOUT_SECS: u64 = 365 * 24 * 3600;

/// Why the flags could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FlagsError {
    /// clap's verdict: a usage error, or a request for `--help`, which
    /// clap reports the same way (see [`FlagsError::is_request_for_help`]).
    #[error("{0}")]
    Clap(#[from] clap::Error),
    /// The config file could not be read or split into words.
    #[error("config file {}: {reason}", path.display())]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
}

impl FlagsError {
    /// `--help` was asked for: the text goes to standard output and the
    /// process exits 0.
    pub fn is_request_for_help(&self) -> bool {
        matches!(self, FlagsError::Clap(e) if matches!(e.kind(), clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion))
    }
}

/// Reads the command line, with flags from `--config-file` (default
/// `/etc/sprocketd.conf`, missing default ignored) placed before it.
pub fn parse() -> Result<Flags, FlagsError> {
    let args: Vec<String> = std::env::args().collect();
    parse_from(args)
}

/// [`parse`] for a given argument list (the first is the program name).
pub fn parse_from(args: Vec<String>) -> Result<Flags, FlagsError> {
    let args: Vec<String> = args.into_iter().map(strip_typographic_quotes).filter(|a| !a.is_empty()).collect();
    let first = Flags::try_parse_from(&args)?;
    let (path, explicit) = match &first.config_file {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from("/etc/sprocketd.conf"), false),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if explicit => return Err(FlagsError::ConfigFile { path, reason: format!("cannot read it: {e}") }),
        Err(_) => return Ok(first),
    };
    let from_file = config_file_words(&text).map_err(|reason| FlagsError::ConfigFile { path: path.clone(), reason })?;
    let mut merged = vec![args.first().cloned().unwrap_or_else(|| "sprocketd".into())];
    merged.extend(from_file.into_iter().map(strip_typographic_quotes).filter(|a| !a.is_empty()));
    // The command line comes last: a flag given in both places takes its
    // command-line value (`args_override_self`).
    merged.extend(args.into_iter().skip(1));
    Ok(Flags::try_parse_from(&merged)?)
}

/// Splits a config file into words as a POSIX shell would: whitespace and
/// newlines separate words, quotes and backslashes work as in a shell, and
/// `#` at the start of a word begins a comment that runs to the end of the
/// line. An unfinished quote is an error rather than a guess.
fn config_file_words(text: &str) -> Result<Vec<String>, String> {
    let mut lexer = shlex::Shlex::new(text);
    let words: Vec<String> = lexer.by_ref().collect();
    if lexer.had_error {
        return Err(format!(
            "unbalanced quote or trailing backslash on line {} (words are quoted as in a shell)",
            lexer.line_no
        ));
    }
    Ok(words)
}

/// Seed documents carry word-processor quotes (`PARAMS=”--verbose …”`),
/// which a shell passes through as part of the first and last argument.
fn strip_typographic_quotes(arg: String) -> String {
    const QUOTES: &[char] = &['\u{201c}', '\u{201d}', '\u{2018}', '\u{2019}'];
    arg.trim_matches(QUOTES).to_string()
}

impl Flags {
    /// The tracing level for `--verbose` / `-v`.
    pub fn log_level(&self) -> (tracing::Level, String) {
        // gearmand's default level; `verbose` reports it as such.
        let name = self.verbose.clone().unwrap_or_else(|| "ERROR".into()).to_ascii_uppercase();
        let base = match name.as_str() {
            "FATAL" | "ALERT" | "CRITICAL" | "ERROR" => 0,
            "WARNING" | "WARN" => 1,
            "NOTICE" | "INFO" => 2,
            _ => 3,
        };
        let level = match base + self.more_verbose {
            0 => tracing::Level::ERROR,
            1 => tracing::Level::WARN,
            2 => tracing::Level::INFO,
            3 => tracing::Level::DEBUG,
            _ => tracing::Level::TRACE,
        };
        (level, name)
    }

    pub fn validate(&self) -> Result<(), String> {
        const LEVELS: &[&str] = &["FATAL", "ALERT", "CRITICAL", "ERROR", "WARNING", "WARN", "NOTICE", "INFO", "DEBUG"];
        if let Some(v) = &self.verbose {
            if !LEVELS.contains(&v.to_ascii_uppercase().as_str()) {
                return Err(format!("invalid --verbose level {v:?}: use one of {}", LEVELS.join(", ")));
            }
        }
        match self.protocol.as_deref() {
            None => {}
            // gearmand accepts its module's name in lower case only.
            Some("http") if self.ssl => {
                return Err("-r http submits its jobs through the plain Gearman port, which --ssl turns into TLS; \
                            use --ssl-port PORT for TLS beside it"
                    .into())
            }
            // Its jobs would reach the Gearman port from loopback, as
            // whatever the ACL grants loopback, whoever sent them.
            Some("http") if self.acl_file.is_some() => {
                return Err(
                    "-r http has no way to tell who sends a job, so it cannot be combined with --acl-file".into()
                )
            }
            Some("http") => {}
            Some(p) => return Err(format!("unknown protocol module {p:?}: the only one is http")),
        }
        if self.ssl_port.is_some() && self.ssl_port == Some(crate::config::effective_port(self)) {
            return Err(
                "--ssl-port must differ from the Gearman port (for TLS on the Gearman port itself, use --ssl)".into()
            );
        }
        if self.ssl_verify_clients && !self.ssl && self.ssl_port.is_none() && !self.web_tls {
            return Err("--ssl-verify-clients needs TLS: add --ssl, --ssl-port PORT or --web-tls".into());
        }
        if self.web_tls
            && matches!(sprocket_http::WebListen::parse(self.web_listen.as_deref()), Ok(sprocket_http::WebListen::Off))
        {
            return Err("--web-tls needs a web port: remove --web-listen none".into());
        }
        if let Some(prefix) = &self.job_handle_prefix {
            if prefix.len() > MAX_HANDLE_PREFIX {
                return Err(format!(
                    "--job-handle-prefix is {} bytes long; at most {MAX_HANDLE_PREFIX} are allowed, so that \
                     handles (<prefix>:<number>) stay under gearmand's 64-byte limit",
                    prefix.len()
                ));
            }
            // Handles are typed in admin commands and stored as text in
            // the record tables: printable ASCII without spaces.
            if !prefix.bytes().all(|c| c.is_ascii_graphic()) {
                return Err(format!(
                    "--job-handle-prefix {prefix:?} may hold only printable ASCII characters without spaces"
                ));
            }
        }
        if self.record_max_count == 0 {
            return Err("--record-max-count must be at least 1".into());
        }
        crate::web::check_flags(self)?;
        Ok(())
    }

    /// The handle prefix: `--job-handle-prefix`, or gearmand's default
    /// `H:<hostname>`. A hostname too long for handles under 64 bytes is cut
    /// to fit, with a warning, since handles are names and a cut one is
    /// still unique to this host in practice; an explicit prefix that long
    /// is refused by [`Flags::validate`] instead.
    pub fn handle_prefix(&self, hostname: &str) -> String {
        if let Some(prefix) = &self.job_handle_prefix {
            return prefix.clone();
        }
        let mut prefix = format!("H:{hostname}");
        if prefix.len() > MAX_HANDLE_PREFIX {
            let mut end = MAX_HANDLE_PREFIX;
            while !prefix.is_char_boundary(end) {
                end -= 1;
            }
            prefix.truncate(end);
            tracing::warn!(
                %hostname,
                prefix = %prefix,
                "the hostname is too long for job handles under 64 bytes; handles use the prefix shown \
                 (choose one with --job-handle-prefix)"
            );
        }
        prefix
    }
}

#[cfg(test)]
mod tests;
