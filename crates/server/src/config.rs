//! What a server needs to start, built from the command-line flags: the
//! flags stay a thin parsing layer, and an embedder or a test can build a
//! [`ServerConfig`] directly.

use std::path::{Path, PathBuf};

use sprocket_engine::{Config as EngineConfig, RecordsConfig, RecordsMode, TimeoutAction};
use sprocket_store::StoreConfig;

use crate::ended_jobs::{EndedJobsConfig, JobLogTarget};
use crate::flags::Flags;
use crate::store_config;

/// Everything [`crate::Server`] needs. The process-level settings (daemon
/// mode, pid file, user, logging, descriptor limit, runtime threads) are
/// not here: they belong to the `sprocketd` process (see
/// [`crate::process`]), not to a server that may run inside another one.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The job engine's settings.
    pub engine: EngineConfig,
    /// The queue store to open and replay; `None` keeps jobs in memory
    /// only (gearmand's `builtin` queue).
    pub store: Option<StoreConfig>,
    /// Connections the store writer commits on at once (0 = the backend's
    /// choice).
    pub store_connections: u16,
    /// Where to listen.
    pub listen: ListenConfig,
    /// Limits per connection and for all of them.
    pub connections: ConnectionLimits,
    /// TCP keepalive for accepted connections.
    pub keepalive: Keepalive,
    /// `--busy-poll`: microseconds to keep polling after activity; `None`
    /// for the default (50 µs, or none when the process may use only one
    /// CPU; polling needs the single-threaded runtime).
    pub busy_poll: Option<u64>,
    /// TLS on the Gearman port or a port of its own; `None`: plaintext only.
    pub tls: Option<crate::tls::TlsSettings>,
    /// The access control list file (`--acl-file`); `None` allows
    /// everything to everyone, as gearmand does.
    pub acl_file: Option<PathBuf>,
    /// The policy file (`--policy-file`): per-function policies and
    /// recurring jobs.
    pub policy_file: Option<PathBuf>,
    /// The job log and the per-function history (`--job-log`, the
    /// history is on unless `--no-history`).
    pub ended_jobs: EndedJobsConfig,
}

/// Where to listen for Gearman connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenConfig {
    /// A host name or address; every address it resolves to is bound.
    /// `None` listens on all interfaces (one dual-stack socket).
    pub host: Option<String>,
    /// The port; 0 lets the system choose (see
    /// [`crate::ServerHandle::local_addrs`]).
    pub port: u16,
    /// The backlog passed to listen(2).
    pub backlog: u32,
}

/// Limits on connections and what they may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Largest packet body accepted, in bytes.
    pub max_packet_size: u32,
    /// Most unsent bytes for one peer (0 = no limit).
    pub max_reply_backlog: u64,
    /// Most unsent bytes for all peers together (0 = no limit, `None` = a
    /// quarter of the memory the process may use).
    pub max_total_reply_backlog: Option<u64>,
    /// Most simultaneous connections; further ones are refused.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    /// The flags' defaults.
    fn default() -> Self {
        ConnectionLimits {
            max_packet_size: sprocket_proto::DEFAULT_MAX_PACKET_SIZE,
            max_reply_backlog: 1 << 30,
            max_total_reply_backlog: None,
            max_connections: 65_536,
        }
    }
}

/// TCP keepalive settings for accepted connections; a negative time or
/// count leaves the system's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// `--keepalive`: set the times and count below (the option itself is
    /// always on, as in gearmand).
    pub enabled: bool,
    /// Seconds idle before the first probe.
    pub idle: i64,
    /// Seconds between probes.
    pub interval: i64,
    /// Probes before the connection is dropped.
    pub count: i64,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive { enabled: false, idle: -1, interval: -1, count: -1 }
    }
}

/// A configuration the flags describe but no server can run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `-q` names no queue this server has.
    #[error(
        "unknown queue type {0:?}: use sqlite (default), builtin, libsqlite3, postgres (libpq), mysql, libdrizzle or redis"
    )]
    UnknownQueueType(String),
    /// The default store's data directory cannot be created.
    #[error(
        "cannot create data directory {}: {source} (the default durable queue lives there: give a directory \
         this user can write with --data-dir DIR, or use -q builtin for gearmand's in-memory queue)",
        dir.display()
    )]
    DataDirectory {
        /// The directory.
        dir: PathBuf,
        /// Why it could not be created.
        source: std::io::Error,
    },
}

impl ServerConfig {
    /// A server with the engine settings given and every other setting at
    /// the flags' defaults, listening as `listen` says, with no store.
    pub fn new(engine: EngineConfig, listen: ListenConfig) -> ServerConfig {
        ServerConfig {
            engine,
            store: None,
            store_connections: 0,
            listen,
            connections: ConnectionLimits::default(),
            keepalive: Keepalive::default(),
            busy_poll: None,
            tls: None,
            acl_file: None,
            policy_file: None,
            ended_jobs: EndedJobsConfig::default(),
        }
    }

    /// The server the flags describe (the admin `verbose` command reports
    /// their log level). Creates the default store's data directory when
    /// that store is chosen.
    pub fn from_flags(flags: &Flags) -> Result<ServerConfig, ConfigError> {
        let choice = store_config::choose(flags, &flags.drizzle)?;
        let (_, level_name) = flags.log_level();
        let ended_jobs = EndedJobsConfig {
            job_log: flags.job_log.as_deref().map(JobLogTarget::parse),
            job_log_results: flags.job_log_results,
            history: !flags.no_history,
            history_file: history_file(flags, choice.config.as_ref()),
        };
        let engine = EngineConfig {
            handle_prefix: flags.handle_prefix(&hostname()),
            job_retries: flags.job_retries,
            worker_wakeup: flags.worker_wakeup,
            round_robin: flags.round_robin,
            exceptions_default: flags.exceptions,
            persist: choice.persist,
            timeout_action: if flags.timeout_action == "retry" { TimeoutAction::Retry } else { TimeoutAction::Fail },
            default_max_queue: flags.max_queue,
            max_jobs: flags.max_jobs,
            version: crate::version_string(),
            pid: std::process::id(),
            verbose: level_name,
            instance_id: crate::engine_task::now_ms() ^ (u64::from(std::process::id()) << 40),
            store_timeout_ms: flags.store_timeout.saturating_mul(1000),
            report_ended_jobs: ended_jobs.wants_reports(),
            // The web port's `/metrics` counts the durations of the jobs
            // that have records (without giving the others one).
            report_recorded_jobs: web_port_on(flags),
            report_payloads: flags.job_log_results,
            records: RecordsConfig {
                mode: match flags.records.as_str() {
                    "all" => RecordsMode::All,
                    "none" => RecordsMode::None,
                    _ => RecordsMode::Background,
                },
                limits: sprocket_records::Limits { max_bytes: flags.record_max_bytes },
                // Set once the store is open: only a store that keeps
                // records, written as jobs run, makes them durable.
                durable: false,
                retention: sprocket_records::Retention {
                    keep_ms: u64::try_from(flags.record_retention.as_millis()).unwrap_or(u64::MAX),
                    dead_keep_ms: u64::try_from(flags.dead_retention.as_millis()).unwrap_or(u64::MAX),
                    max_count: flags.record_max_count,
                },
            },
            ..EngineConfig::default()
        };
        Ok(ServerConfig {
            engine,
            store: choice.config,
            store_connections: flags.store_connections,
            listen: ListenConfig { host: flags.listen.clone(), port: effective_port(flags), backlog: flags.backlog },
            connections: ConnectionLimits {
                max_packet_size: flags.max_packet_size,
                max_reply_backlog: flags.max_reply_backlog,
                max_total_reply_backlog: flags.max_total_reply_backlog,
                max_connections: flags.max_connections,
            },
            keepalive: Keepalive {
                enabled: flags.keepalive,
                idle: flags.keepalive_idle,
                interval: flags.keepalive_interval,
                count: flags.keepalive_count,
            },
            busy_poll: flags.busy_poll,
            tls: tls_settings(flags),
            acl_file: flags.acl_file.clone(),
            policy_file: flags.policy_file.clone(),
            ended_jobs,
        })
    }
}

/// Where the history snapshot lives: in `--data-dir` when given, else
/// beside the SQLite queue file; `None` (history in memory only) for the
/// other queues without `--data-dir`.
fn history_file(flags: &Flags, store: Option<&StoreConfig>) -> Option<PathBuf> {
    if flags.no_history {
        return None;
    }
    let name = format!("sprocket-{}-history.json", effective_port(flags));
    match (&flags.data_dir, store) {
        (Some(dir), _) => Some(dir.join(name)),
        (None, Some(StoreConfig::Sqlite { path, .. })) => Some(path.parent().unwrap_or(Path::new(".")).join(name)),
        (None, _) => None,
    }
}

/// The port, with gearmand's GEARMAND_PORT override when left at 4730.
pub(crate) fn effective_port(flags: &Flags) -> u16 {
    if flags.port == 4730 {
        if let Some(p) = std::env::var("GEARMAND_PORT").ok().and_then(|v| v.parse().ok()) {
            return p;
        }
    }
    flags.port
}

/// The TLS settings the flags ask for: each file from its flag, else from
/// gearmand's environment variable, else at gearmand's default path.
fn tls_settings(flags: &Flags) -> Option<crate::tls::TlsSettings> {
    use crate::tls::{DEFAULT_CA_FILE, DEFAULT_CERTIFICATE, DEFAULT_KEY};
    if !flags.ssl && flags.ssl_port.is_none() && !flags.web_tls {
        return None;
    }
    let file = |flag: &Option<String>, variable: &str, default: &str| -> PathBuf {
        flag.clone()
            .or_else(|| std::env::var(variable).ok().filter(|v| !v.is_empty()))
            .unwrap_or_else(|| default.to_string())
            .into()
    };
    Some(crate::tls::TlsSettings {
        certificate: file(&flags.ssl_certificate, "GEARMAND_SERVER_PEM", DEFAULT_CERTIFICATE),
        key: file(&flags.ssl_key, "GEARMAND_SERVER_KEY", DEFAULT_KEY),
        ca_file: file(&flags.ssl_ca_file, "GEARMAND_CA_CERTIFICATE", DEFAULT_CA_FILE),
        // An ACL needs to know who each TLS client is.
        verify_clients: flags.ssl_verify_clients || flags.acl_file.is_some(),
        handshake_timeout: std::time::Duration::from_secs(flags.ssl_handshake_timeout),
        on_main_port: flags.ssl,
        extra_port: flags.ssl_port,
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Whether the flags ask for a web port (it may still be off when its
/// default address is taken).
fn web_port_on(flags: &Flags) -> bool {
    !matches!(sprocket_http::WebListen::parse(flags.web_listen.as_deref()), Ok(sprocket_http::WebListen::Off))
}
