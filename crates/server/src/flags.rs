//! Command-line flags: gearmand 1.1.20's, so an existing
//! `/etc/default/gearman-job-server` PARAMS line works, plus Sprocket's own.

use std::path::PathBuf;

use clap::{ArgAction, Parser};

// A flag given twice takes its last value (`-v` still counts): a service
// wrapper puts its own defaults before the administrator's PARAMS line and
// the flags it must control (detaching, pid file, user, log file) after it,
// and Debian's stock PARAMS already holds `--daemon` and a `--log-file`.
/// sprocketd — a Gearman job server, drop-in for gearmand.
#[derive(Debug, Clone, Parser)]
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
    #[arg(short = 'b', long, default_value_t = 1024)]
    pub backlog: u32,
    /// Detach and run in the background.
    #[arg(short = 'd', long)]
    pub daemon: bool,
    /// New connections start with exceptions enabled.
    #[arg(long)]
    pub exceptions: bool,
    /// Set the file-descriptor limit (soft, and hard if needed).
    #[arg(short = 'f', long = "file-descriptors")]
    pub file_descriptors: Option<u64>,
    /// Most attempts before a job is dropped; 0 = unlimited.
    #[arg(short = 'j', long = "job-retries", default_value_t = 0)]
    pub job_retries: u32,
    /// Prefix of job handles (default H:<hostname>).
    #[arg(long = "job-handle-prefix")]
    pub job_handle_prefix: Option<String>,
    /// Accepted for compatibility (hash tables grow as needed).
    #[arg(long = "hashtable-buckets")]
    pub hashtable_buckets: Option<u64>,
    /// Enable TCP keepalive.
    #[arg(long)]
    pub keepalive: bool,
    #[arg(long = "keepalive-idle", default_value_t = -1, allow_negative_numbers = true)]
    pub keepalive_idle: i64,
    #[arg(long = "keepalive-interval", default_value_t = -1, allow_negative_numbers = true)]
    pub keepalive_interval: i64,
    #[arg(long = "keepalive-count", default_value_t = -1, allow_negative_numbers = true)]
    pub keepalive_count: i64,
    /// Log file; `stderr` (default) or `none` are special.
    #[arg(short = 'l', long = "log-file", default_value = "stderr")]
    pub log_file: String,
    /// Address to listen on (all addresses it resolves to); default all.
    #[arg(short = 'L', long)]
    pub listen: Option<String>,
    /// Port for the Gearman protocol and admin commands.
    #[arg(short = 'p', long, default_value_t = 4730)]
    pub port: u16,
    /// Write the process id to this file; removed on exit.
    #[arg(short = 'P', long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Extra protocol module (gearmand: `http`). Not supported yet.
    #[arg(short = 'r', long)]
    pub protocol: Option<String>,
    /// Rotate a worker's functions after each hand-out.
    #[arg(short = 'R', long = "round-robin")]
    pub round_robin: bool,
    /// Queue type: sqlite (default, durable), builtin (memory only),
    /// libsqlite3, postgres/libpq, mysql, redis.
    #[arg(short = 'q', long = "queue-type")]
    pub queue_type: Option<String>,
    /// File of extra command-line tokens (missing default is ignored).
    #[arg(long = "config-file")]
    pub config_file: Option<PathBuf>,
    /// Also send every log line to the local syslog daemon (/dev/log).
    #[arg(long)]
    pub syslog: bool,
    /// Leave crash signals alone (accepted; Rust does not catch them).
    #[arg(long)]
    pub coredump: bool,
    /// Threads for connection I/O (0 = number of CPUs). The engine is one
    /// task either way; with 1 (the default) everything shares one thread
    /// and no work crosses threads, which is fastest on small machines.
    #[arg(short = 't', long, default_value_t = 1)]
    pub threads: usize,
    /// Switch to this user after binding (requires root).
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Log level: FATAL, ALERT, CRITICAL, ERROR (default), WARNING, NOTICE,
    /// INFO, DEBUG. Alone, it means INFO. May be repeated (the last wins).
    #[arg(long, num_args = 0..=1, default_missing_value = "INFO", overrides_with = "verbose")]
    pub verbose: Option<String>,
    /// More verbose logging (repeatable).
    #[arg(short = 'v', action = ArgAction::Count)]
    pub more_verbose: u8,
    /// NOOPs sent per queued job; 0 wakes every sleeping worker.
    #[arg(short = 'w', long = "worker-wakeup", default_value_t = 0)]
    pub worker_wakeup: u32,
    /// Validate the options and exit.
    #[arg(long = "check-args", hide = true)]
    pub check_args: bool,

    // ---- SSL and HTTP (accepted, not yet supported) ----
    #[arg(long)]
    pub ssl: bool,
    #[arg(long = "ssl-ca-file")]
    pub ssl_ca_file: Option<String>,
    #[arg(long = "ssl-certificate")]
    pub ssl_certificate: Option<String>,
    #[arg(long = "ssl-key")]
    pub ssl_key: Option<String>,
    #[arg(long = "http-port", default_value_t = 8080)]
    pub http_port: u16,

    // ---- queue options (gearmand names) ----
    #[arg(long = "libsqlite3-db")]
    pub libsqlite3_db: Option<PathBuf>,
    #[arg(long = "libsqlite3-table", default_value = "gearman_queue")]
    pub libsqlite3_table: String,
    /// Write the queue only at shutdown (sqlite).
    #[arg(long = "store-queue-on-shutdown")]
    pub store_queue_on_shutdown: bool,
    #[arg(long = "libpq-conninfo", default_value = "")]
    pub libpq_conninfo: String,
    #[arg(long = "libpq-table", default_value = "queue")]
    pub libpq_table: String,
    #[arg(long = "mysql-host", default_value = "localhost")]
    pub mysql_host: String,
    #[arg(long = "mysql-port", default_value_t = 3306)]
    pub mysql_port: u16,
    #[arg(long = "mysql-user", default_value = "")]
    pub mysql_user: String,
    #[arg(long = "mysql-password", default_value = "")]
    pub mysql_password: String,
    #[arg(long = "mysql-db", default_value = "")]
    pub mysql_db: String,
    #[arg(long = "mysql-table", default_value = "gearman_queue")]
    pub mysql_table: String,
    #[arg(long = "redis-server", default_value = "127.0.0.1")]
    pub redis_server: String,
    #[arg(long = "redis-port", default_value_t = 6379)]
    pub redis_port: u16,
    #[arg(long = "redis-password")]
    pub redis_password: Option<String>,
    #[arg(long = "redis-prefix", default_value = "_gear_")]
    pub redis_prefix: String,

    // ---- Sprocket's own ----
    /// Directory of the default SQLite store.
    #[arg(long = "data-dir")]
    pub data_dir: Option<PathBuf>,
    /// Durability: `full` (fsync before JOB_CREATED; survives power loss)
    /// or `normal` (survives a crash of sprocketd).
    #[arg(long, default_value = "full", value_parser = ["full", "normal"])]
    pub sync: String,
    /// Connections the store writer commits on at once (0 = the backend's
    /// choice: 4 for Redis, 1 for PostgreSQL and MySQL, whose commits on
    /// one table measured fastest batched on one connection). SQLite has
    /// a single writer whatever this says.
    #[arg(long = "store-connections", default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=64))]
    pub store_connections: u16,
    /// Seconds a background submit waits for the store (a hung disk or
    /// database) before its client gets an error instead (0 = for ever).
    #[arg(long = "store-timeout", default_value_t = 60)]
    pub store_timeout: u64,
    /// Largest packet body accepted, in bytes.
    #[arg(long = "max-packet-size", default_value_t = sprocket_proto::DEFAULT_MAX_PACKET_SIZE)]
    pub max_packet_size: u32,
    /// Most bytes of output that may wait for one peer (0 = no limit;
    /// raised to twice --max-packet-size). A peer that reads is never cut
    /// off below it; one holding over 64 MiB that takes nothing for 30 s is.
    #[arg(long = "max-reply-backlog", default_value_t = 1 << 30)]
    pub max_reply_backlog: u64,
    /// Most bytes of output that may wait for all peers together (0 = no
    /// limit; default: a quarter of the memory the process may use). Over
    /// it, a peer given more while it has over 1 MiB waiting is cut off.
    #[arg(long = "max-total-reply-backlog", value_name = "BYTES")]
    pub max_total_reply_backlog: Option<u64>,
    /// After handling anything, keep polling the sockets for this many
    /// microseconds before sleeping, so the next packet is read without a
    /// wake-up (0 = always sleep at once; at most 1000000). Default: 50, or
    /// 0 when the process may use only one CPU. Only with one thread (`-t 1`).
    #[arg(long = "busy-poll", value_name = "MICROSECONDS", value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub busy_poll: Option<u64>,
    /// Most simultaneous connections; further ones are refused.
    #[arg(long = "max-connections", default_value_t = 65_536)]
    pub max_connections: usize,
    /// Default queue limit per function and priority (0 = none; admin
    /// `maxqueue` overrides it per function).
    #[arg(long = "max-queue", default_value_t = 0)]
    pub max_queue: u32,
    /// Most jobs in the whole server (0 = none).
    #[arg(long = "max-jobs", default_value_t = 0)]
    pub max_jobs: usize,
    /// When a CAN_DO_TIMEOUT limit expires: `fail` the job, or `retry` it.
    #[arg(long = "timeout-action", default_value = "fail", value_parser = ["fail", "retry"])]
    pub timeout_action: String,

    #[command(flatten)]
    pub drizzle: crate::store_config::ExtraQueueFlags,
}

/// Reads the command line, with tokens from `--config-file` (default
/// `/etc/sprocketd.conf`, missing default ignored) placed before it.
pub fn parse() -> Result<Flags, String> {
    let args: Vec<String> = std::env::args().collect();
    parse_from(args)
}

pub fn parse_from(args: Vec<String>) -> Result<Flags, String> {
    let args: Vec<String> = args.into_iter().map(strip_typographic_quotes).filter(|a| !a.is_empty()).collect();
    let first = Flags::try_parse_from(&args).map_err(|e| e.to_string())?;
    let (path, explicit) = match &first.config_file {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from("/etc/sprocketd.conf"), false),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if explicit => return Err(format!("cannot read config file {}: {e}", path.display())),
        Err(_) => return Ok(first),
    };
    let mut merged = vec![args.first().cloned().unwrap_or_else(|| "sprocketd".into())];
    merged.extend(text.split_whitespace().filter(|t| !t.starts_with('#')).map(String::from));
    merged.extend(args.into_iter().skip(1));
    Flags::try_parse_from(&merged).map_err(|e| e.to_string())
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
        if let Some(p) = &self.protocol {
            return Err(format!("protocol module {p:?} is not supported yet (gearmand's only one is http)"));
        }
        if self.ssl {
            return Err("--ssl is not supported yet".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, String> {
        let mut v = vec!["sprocketd".to_string(), "--config-file=/nonexistent-default".into()];
        v.extend(args.iter().map(|s| s.to_string()));
        // Use an explicit but missing config file only where asked.
        v.remove(1);
        parse_from(v)
    }

    #[test]
    fn seed_params_lines_parse() {
        let f = parse(&["--listen=127.0.0.1", "--queue-type", "Postgres", "--libpq-table=queue", "--verbose", "DEBUG"])
            .unwrap();
        assert_eq!(f.listen.as_deref(), Some("127.0.0.1"));
        assert_eq!(f.queue_type.as_deref(), Some("Postgres"));
        assert_eq!(f.libpq_table, "queue");
        assert_eq!(f.verbose.as_deref(), Some("DEBUG"));

        let f =
            parse(&["\u{201d}--verbose", "-q", "libpq", "--libpq-table=gearmanqueue1", "--verbose\u{201d}"]).unwrap();
        assert_eq!(f.queue_type.as_deref(), Some("libpq"));
        assert_eq!(f.verbose.as_deref(), Some("INFO"));

        let f = parse(&[
            "--queue-type=MySQL",
            "--mysql-host=localhost",
            "--mysql-port=3306",
            "--mysql-user=drupal",
            "--mysql-password=your_pw",
            "--mysql-db=drupal",
            "--mysql-table=gearman_queue",
        ])
        .unwrap();
        assert_eq!(f.mysql_user, "drupal");
    }

    #[test]
    fn a_repeated_flag_takes_its_last_value() {
        let f = parse(&[
            "--daemon",
            "--log-file=/var/log/a.log",
            "-p",
            "4731",
            "--daemon",
            "--log-file=/var/log/b.log",
            "--port=4732",
            "-v",
            "-v",
        ])
        .unwrap();
        assert!(f.daemon);
        assert_eq!(f.log_file, "/var/log/b.log");
        assert_eq!(f.port, 4732);
        assert_eq!(f.more_verbose, 2, "-v counts");
    }

    #[test]
    fn unknown_flag_is_an_error() {
        let err = parse(&["--no-such-flag"]).unwrap_err();
        assert!(err.contains("--no-such-flag"), "{err}");
    }

    #[test]
    fn bad_verbose_level_is_rejected() {
        assert!(parse(&["--verbose", "LOUD"]).unwrap().validate().is_err());
    }
}
