//! The `sprocketd` process around a [`Server`]: detaching (`-d`), logging,
//! the descriptor limit (`-f`), the runtime (`-t`), signals, the pid file
//! (`-P`) and dropping root (`-u`). These belong to the process, not to a
//! server that may run inside another program or a test.

pub mod daemon;
mod privileges;
mod signals;

use std::path::PathBuf;

use crate::config::ServerConfig;
use crate::error::{Error, ProcessError};
use crate::flags::Flags;
use crate::logging::{self, LogTarget};
use crate::server::Server;

/// Descriptors the server needs besides its connections (listeners, the
/// store's files, the runtime's, logs).
const FD_RESERVE: usize = 64;

/// Runs `sprocketd` with parsed and validated flags until it stops. With
/// `-d`, the caller is the parent process, which exits inside this call:
/// with 0 once the detached server listens, with 1 if it fails first.
pub fn run(flags: Flags) -> Result<(), Error> {
    let ready = if flags.daemon { Some(daemon::daemonize()?) } else { None };
    let (level, _) = flags.log_level();
    // A detached server has no terminal: without --log-file its lines go
    // to syslog (journald or rsyslog keep them) rather than nowhere.
    let daemon_default = flags.daemon && !flags.syslog && matches!(flags.log_file.as_str(), "stderr" | "");
    let log = if daemon_default { LogTarget::None } else { LogTarget::open(&flags.log_file) };
    logging::init(&log, flags.syslog || daemon_default, level);
    set_fd_limit(&flags)?;
    let threads = match flags.threads {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
        n => n.min(64),
    };
    // One thread: engine and connections share it, with no cross-thread
    // wake-ups at all. More: connection tasks spread over worker threads.
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()
    }
    .map_err(ProcessError::Runtime)?;
    runtime.block_on(serve(flags, log, ready))
}

/// `-f` sets the descriptor limit; without it the soft limit is raised as
/// far as allowed, with a warning when that is below `--max-connections`.
fn set_fd_limit(flags: &Flags) -> Result<(), ProcessError> {
    if let Some(n) = flags.file_descriptors {
        return privileges::set_fd_limit(n);
    }
    match privileges::raise_fd_soft_limit() {
        Ok(limit) if (limit as usize) < flags.max_connections.saturating_add(FD_RESERVE) => tracing::warn!(
            limit,
            max_connections = flags.max_connections,
            "the file-descriptor limit is below --max-connections; connections beyond about {} will fail \
             (raise it with -f/--file-descriptors or the service's LimitNOFILE)",
            // Start-up uses a handful of descriptors; the reserve is kept
            // for the store and logs only where there is room.
            (limit as usize).saturating_sub(FD_RESERVE.min(limit as usize / 4).max(8)).max(1)
        ),
        Ok(limit) => tracing::debug!(limit, "file-descriptor limit"),
        Err(e) => tracing::warn!("cannot raise the file-descriptor limit: {e}"),
    }
    Ok(())
}

async fn serve(flags: Flags, log: LogTarget, ready: Option<daemon::ReadyPipe>) -> Result<(), Error> {
    // First of all, so that no signal during start-up takes the default
    // action (see `Signals`).
    let caught = signals::Signals::install();
    let config = ServerConfig::from_flags(&flags)?;
    let server = Server::prepare(config).await?;
    // Bound before the user switch, like the Gearman port, so a port
    // below 1024 and a token file only root may read both work.
    let web_tls = server.web_tls().filter(|_| flags.web_tls);
    let mut web_config = crate::web::config_from_flags(&flags, server.store_config(), server.local_addrs(), web_tls)
        .map_err(ProcessError::Web)?;
    // The same list as the Gearman port's, reloads and grants included.
    web_config.acl = server.web_acl();
    let store_name = web_config.store.clone();
    let web = sprocket_http::bind(web_config).map_err(|e| ProcessError::Web(e.to_string()))?;
    let http_protocol = crate::http_protocol::bind(&flags, server.local_addrs()).map_err(ProcessError::Web)?;
    // Listening, not yet accepting: the pid file and the user switch come
    // before any connection is served.
    let pid_file = match &flags.pid_file {
        Some(p) => Some(daemon::PidFile::create(p)?),
        None => None,
    };
    if let Some(user) = &flags.user {
        let files = files_kept_after_dropping_root(&flags, &log, server.store_config());
        for f in privileges::hand_over(user, &files)? {
            tracing::warn!("cannot hand {f} to user {user}");
        }
        privileges::switch_user(user)?;
        if let Some(p) = &pid_file {
            p.check_removable();
        }
    }
    if let Some(r) = ready {
        r.ready();
    }
    let handle = server.run();
    let web_addr = match web {
        Some(web) => {
            let addr = web.local_addr().ok();
            sprocket_http::spawn(web, std::sync::Arc::new(handle.link()))
                .map_err(|e| ProcessError::Web(format!("cannot start the web port: {e}")))?;
            addr
        }
        None => None,
    };
    let http_protocol_addr = match http_protocol {
        Some(http) => {
            let addr = http.local_addr().ok();
            http.spawn().map_err(|e| ProcessError::Web(format!("cannot start the -r http port: {e}")))?;
            addr
        }
        None => None,
    };
    if !flags.daemon {
        crate::web::announce(handle.local_addrs(), &store_name, web_addr, http_protocol_addr);
    }
    tokio::spawn(signals::handle(
        caught,
        handle.stopper(),
        log,
        handle.certificate_reloader(),
        handle.job_log_reopener(),
        handle.acl_reloader(),
        handle.policy_reloader(),
    ));
    handle.wait().await?;
    // The pid file goes last, once everything is stored.
    drop(pid_file);
    Ok(())
}

/// The files sprocketd writes, reopens or recreates after `--user` drops
/// root: log file, pid file, the SQLite queue (its -wal/-shm files come
/// and go, so the default data directory too; a `--libsqlite3-db` file's
/// directory is the administrator's and is left alone).
fn files_kept_after_dropping_root(
    flags: &Flags,
    log: &LogTarget,
    store: Option<&sprocket_store::StoreConfig>,
) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let LogTarget::File { path, .. } = log {
        paths.push(path.clone());
    }
    paths.extend(flags.pid_file.iter().cloned());
    // Reopened on SIGHUP, and the history snapshot rewritten, as the user.
    paths.extend(flags.job_log.iter().filter(|p| *p != "-").map(PathBuf::from));
    if let Some(sprocket_store::StoreConfig::Sqlite { path, .. }) = store {
        if flags.libsqlite3_db.is_none() {
            paths.extend(path.parent().map(std::path::Path::to_path_buf));
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.clone().into_os_string();
            file.push(suffix);
            paths.push(file.into());
        }
    }
    paths
}
