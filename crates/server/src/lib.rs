//! sprocketd: tokio glue around the sans-I/O engine.
//!
//! One task owns the [`sprocket_engine::Engine`]; each connection has a
//! reader and a writer task; the store's group-commit writer runs beside
//! them. The store is replayed into the engine before the listener opens.

pub mod busy_poll;
pub mod connection;
pub mod daemon;
pub mod engine_task;
pub mod event;
pub mod flags;
pub mod listener;
pub mod logging;
pub mod outlet;
pub mod store_config;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use sprocket_engine::{Config, Engine, PersistMode, ReplayJob, ShutdownRequest, TimeoutAction};
use sprocket_store::writer::{self, WriterConfig};
use tokio::sync::{mpsc, watch};

use crate::connection::ConnSettings;
use crate::engine_task::{now_ms, to_store_op, EngineTask};
use crate::flags::Flags;
use crate::logging::LogTarget;

/// The version reported by `version`: gearmand's protocol level, then ours.
pub fn version_string() -> String {
    format!("1.1.20+sprocket.{}", env!("CARGO_PKG_VERSION"))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The files sprocketd writes, reopens or recreates after `--user` drops
/// root: log file, pid file, the SQLite queue (its -wal/-shm files come
/// and go, so the default data directory too; a `--libsqlite3-db` file's
/// directory is the administrator's and is left alone).
fn files_kept_after_dropping_root(
    flags: &Flags,
    log: &LogTarget,
    store: Option<&sprocket_store::StoreConfig>,
) -> Vec<std::path::PathBuf> {
    let mut paths = Vec::new();
    if let LogTarget::File { path, .. } = log {
        paths.push(path.clone());
    }
    paths.extend(flags.pid_file.iter().map(std::path::PathBuf::from));
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

/// Hands the heap freed after a replay back to the OS. The rows loaded
/// from the store are copied into compact job records and dropped, but
/// they were interleaved with those records on the heap, so glibc keeps
/// the freed pages: measured with 1,000,000 replayed jobs, 550 MB resident
/// without this against 420 MB for the same jobs submitted live.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own heap; it has no
    // preconditions and is safe to call at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Descriptors the server needs besides its connections (listeners, the
/// store's files, the runtime's, logs).
const FD_RESERVE: usize = 64;

/// Runs the server until shutdown. Called from `main` after flags are
/// parsed and, with `-d`, after forking.
pub fn run(flags: Flags, ready: Option<daemon::ReadyPipe>) -> Result<()> {
    let (level, level_name) = flags.log_level();
    // A detached server has no terminal: without --log-file its lines go
    // to syslog (journald or rsyslog keep them) rather than nowhere.
    let daemon_default = flags.daemon && !flags.syslog && matches!(flags.log_file.as_str(), "stderr" | "");
    let log = if daemon_default { LogTarget::None } else { LogTarget::open(&flags.log_file) };
    logging::init(&log, flags.syslog || daemon_default, level);

    if let Some(n) = flags.file_descriptors {
        daemon::set_fd_limit(n).map_err(|e| anyhow!(e))?;
    } else {
        match daemon::raise_fd_soft_limit() {
            Ok(limit) if (limit as usize) < flags.max_connections.saturating_add(FD_RESERVE) => tracing::warn!(
                limit,
                max_connections = flags.max_connections,
                "the file-descriptor limit is below --max-connections; connections beyond about {} will fail \
                 (raise it with -f/--file-descriptors or the service's LimitNOFILE)",
                // Start-up uses a handful of descriptors; the reserve is
                // kept for the store and logs only where there is room.
                (limit as usize).saturating_sub(FD_RESERVE.min(limit as usize / 4).max(8)).max(1)
            ),
            Ok(limit) => tracing::debug!(limit, "file-descriptor limit"),
            Err(e) => tracing::warn!("cannot raise the file-descriptor limit: {e}"),
        }
    }
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
    .context("starting the runtime")?;
    runtime.block_on(serve(flags, threads <= 1, level_name, log, ready))
}

async fn serve(
    flags: Flags,
    single_thread: bool,
    level_name: String,
    log: LogTarget,
    ready: Option<daemon::ReadyPipe>,
) -> Result<()> {
    let caught = Signals::install();
    let choice = store_config::choose(&flags, &flags.drizzle).map_err(|e| anyhow!(e))?;
    let config = Config {
        handle_prefix: flags.handle_prefix(&hostname()),
        job_retries: flags.job_retries,
        worker_wakeup: flags.worker_wakeup,
        round_robin: flags.round_robin,
        exceptions_default: flags.exceptions,
        persist: choice.persist,
        timeout_action: if flags.timeout_action == "retry" { TimeoutAction::Retry } else { TimeoutAction::Fail },
        default_max_queue: flags.max_queue,
        max_jobs: flags.max_jobs,
        version: version_string(),
        pid: std::process::id(),
        verbose: level_name,
        instance_id: now_ms() ^ (u64::from(std::process::id()) << 40),
        store_timeout_ms: flags.store_timeout.saturating_mul(1000),
    };
    let mut engine = Engine::new(config);
    // The clock is set before replay, so a stored epoch job already due is
    // queued in replay order instead of being scheduled behind the rest.
    engine.tick(now_ms());

    // Open and replay the store before accepting anyone.
    let mut writer = None;
    let mut completions = None;
    if let Some(store_config) = &choice.config {
        let mut store =
            sprocket_store::open(store_config).await.map_err(|e| anyhow!("cannot open the queue store: {e}"))?;
        let mut replay_part = |jobs: Vec<sprocket_store::StoredJob>| {
            for j in jobs {
                // With --store-queue-on-shutdown the rows stay until their
                // jobs end (gearmand 1.1.20; 1.1.21 emptied the table here,
                // so a crash after a restart lost every replayed job).
                engine.replay(ReplayJob {
                    function: j.function,
                    unique: j.unique,
                    priority: j.priority,
                    data: j.data,
                    when: j.when,
                });
            }
        };
        let replayed = store
            .load_each(&mut replay_part)
            .await
            .map_err(|e| anyhow!("failed to reload queue from {}: {e}", store.describe()))?;
        tracing::info!(store = %store.describe(), jobs = replayed, "replayed stored jobs");
        release_freed_memory();
        let stores = writer::open_streams(store, usize::from(flags.store_connections)).await;
        let (handle, rx) = writer::spawn_streams(stores, WriterConfig::default());
        writer = Some(handle);
        completions = Some(rx);
    }

    let listeners = listener::bind(&flags).await?;
    for l in &listeners {
        if let Ok(addr) = l.local_addr() {
            tracing::info!(%addr, version = %version_string(), "sprocketd listening");
        }
    }
    let _pid_file = match &flags.pid_file {
        Some(p) => Some(daemon::PidFile::create(p).map_err(|e| anyhow!(e))?),
        None => None,
    };
    if let Some(user) = &flags.user {
        let failures = daemon::hand_over(user, &files_kept_after_dropping_root(&flags, &log, choice.config.as_ref()))
            .map_err(|e| anyhow!(e))?;
        for f in failures {
            tracing::warn!("cannot hand {f} to user {user}");
        }
        daemon::switch_user(user).map_err(|e| anyhow!(e))?;
        if let Some(p) = &_pid_file {
            p.check_removable();
        }
    }
    if let Some(r) = ready {
        r.ready();
    }

    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (shutdown_tx, shutdown_rx) = watch::channel(None::<ShutdownRequest>);
    let (stop_accepting_tx, stop_accepting_rx) = watch::channel(false);
    let settings = Arc::new(ConnSettings {
        max_packet_size: flags.max_packet_size,
        backlog: outlet::BacklogLimits::new(flags.max_reply_backlog, flags.max_packet_size),
        total_backlog: Arc::new(outlet::TotalBacklog::new(flags.max_total_reply_backlog)),
    });
    let next_conn = Arc::new(AtomicU64::new(1));
    let limit = Arc::new(tokio::sync::Semaphore::new(flags.max_connections.max(1)));
    let keepalive = listener::Keepalive::from_flags(&flags);
    // Every connection task holds a clone; when all are gone, every reply
    // (such as the OK to `shutdown`) has been written.
    let (flushed_tx, mut flushed_rx) = mpsc::channel::<()>(1);
    for l in listeners {
        let acceptor = listener::Acceptor {
            events: events_tx.clone(),
            settings: settings.clone(),
            next_conn: next_conn.clone(),
            limit: limit.clone(),
            keepalive: keepalive.clone(),
            stop: stop_accepting_rx.clone(),
            flushed: flushed_tx.clone(),
        };
        tokio::spawn(listener::accept_loop(l, acceptor));
    }
    drop(flushed_tx);
    drop(events_tx);
    tokio::spawn(signals(caught, shutdown_tx, log));

    let activity = busy_poll::Activity::default();
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    match busy_poll::window(flags.busy_poll, cpus) {
        Some(window) if single_thread => {
            tracing::info!(micros = window.as_micros() as u64, "busy polling after activity");
            tokio::spawn(activity.clone().poll_after_activity(window));
        }
        Some(_) => tracing::info!("busy polling off: it needs the single-threaded runtime (-t 1)"),
        None if flags.busy_poll == Some(0) => tracing::info!("busy polling off (--busy-poll 0)"),
        None => tracing::info!(cpus, "busy polling off: only one CPU to run on"),
    }
    let task = EngineTask {
        activity,
        engine,
        events: events_rx,
        writer,
        completions,
        shutdown: shutdown_rx,
        stop_accepting: stop_accepting_tx,
        scratch: bytes::BytesMut::with_capacity(64 * 1024),
        first_seen: sprocket_engine::FastMap::default(),
        requested: None,
        half_closed: Vec::new(),
        withheld: sprocket_engine::FastMap::default(),
    };
    // A runtime task, not the `block_on` thread: wake-ups between it and
    // the connections then stay on the runtime's own threads.
    let (mut engine, writer) = tokio::spawn(task.run()).await.context("engine task failed")?;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), flushed_rx.recv()).await;

    if let Some(w) = writer {
        if engine.config().persist == PersistMode::OnShutdown {
            let n = engine.dump_persisted_jobs();
            tracing::info!(jobs = n, "storing the queue at shutdown");
        }
        for (seq, op) in engine.take_outbox().persist {
            w.submit(seq, to_store_op(op));
        }
        w.close().await;
    }
    tracing::info!("sprocketd stopped");
    Ok(())
}

/// SIGTERM/SIGINT stop at once; SIGUSR1 stops gracefully; SIGHUP reopens
/// the log file.
/// The signals sprocketd acts on, caught from the start of `serve`: one
/// that arrives while the store replays or the listeners open (a log
/// rotation's SIGHUP, an early SIGTERM) is kept and handled once the server
/// runs, instead of killing the process with the default action.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Option<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::user_defined1()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(term), Ok(int), Ok(usr1), Ok(hup)) => Some(Signals { term, int, usr1, hup }),
            _ => {
                tracing::error!("cannot install signal handlers");
                None
            }
        }
    }
}

async fn signals(installed: Option<Signals>, shutdown: watch::Sender<Option<ShutdownRequest>>, log: LogTarget) {
    let Some(Signals { mut term, mut int, mut usr1, mut hup }) = installed else {
        // Keep the sender: the engine stops when it is dropped.
        std::future::pending::<()>().await;
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); let _ = shutdown.send(Some(ShutdownRequest::Immediate)); }
            _ = int.recv() => { tracing::info!("SIGINT: shutting down"); let _ = shutdown.send(Some(ShutdownRequest::Immediate)); }
            _ = usr1.recv() => { tracing::info!("SIGUSR1: graceful shutdown"); let _ = shutdown.send(Some(ShutdownRequest::Graceful)); }
            _ = hup.recv() => log.reopen(),
        }
    }
}
