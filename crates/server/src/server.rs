//! The server's one entry point: [`Server::start`] opens and replays the
//! store, binds the listeners and starts the engine task, the accept loops
//! and the store writer; the [`ServerHandle`] it returns reports the local
//! addresses, stops the server, and carries the typed query and command
//! channel into the engine task ([`EngineLink`]).
//!
//! Process matters (detaching, the pid file, switching user, signals,
//! logging) are not here but in [`crate::process`], so a server can run
//! inside any tokio runtime: a test starts one on port 0 in-process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sprocket_engine::cron::{CronSpec, CRON_SETTING, CRON_TICK_SETTING};
use sprocket_engine::{
    Config as EngineConfig, Engine, PersistMode, Record, ReplayJob, ShutdownRequest, PAUSED_SETTING, POLICY_SETTING,
};
use sprocket_store::writer::{self, WriterConfig, WriterHandle};
use sprocket_store::{Completion, JobKey, Store, StoreConfig, StoreOp, HANDLE_BLOCK};
use tokio::net::TcpListener;
use tokio::runtime::RuntimeFlavor;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::acl::{AclReloader, AclStore};
use crate::config::ServerConfig;
use crate::connection::ConnSettings;
use crate::control::{Control, EngineLink, CONTROL_QUEUE};
use crate::ended_jobs::{EndedJobs, Reopener};
use crate::engine_task::{now_ms, to_store_op, EngineTask};
use crate::error::{RunError, StartError};
use crate::policy_file::PolicyReloader;
use crate::telemetry::SharedStats;
use crate::tls::{CertificateReloader, Certificates};
use crate::{busy_poll, listener, outlet, record_reader};

/// A server whose store is replayed and whose listeners are bound, not yet
/// accepting: connections wait in the listen backlog until
/// [`Server::run`]. `sprocketd` writes its pid file and drops root between
/// the two, so nothing is accepted before either is done.
pub struct Server {
    config: ServerConfig,
    engine: Engine,
    store: Option<StoreLink>,
    /// The store's record reader, when the store keeps records.
    reader: Option<Box<dyn Store>>,
    /// Each listener, with the TLS configuration when it speaks TLS.
    listeners: Vec<(TcpListener, Option<Arc<Certificates>>)>,
    local_addrs: Vec<SocketAddr>,
    certificates: Option<Arc<Certificates>>,
    acl: Option<Arc<AclStore>>,
    ended_jobs: EndedJobs,
}

/// The running server.
///
/// Dropping the handle stops the server at once (unless a [`Stopper`]
/// taken from it is still held); [`ServerHandle::wait`] waits for it to
/// stop on its own.
pub struct ServerHandle {
    local_addrs: Vec<SocketAddr>,
    link: EngineLink,
    certificates: CertificateReloader,
    acl: AclReloader,
    policy: PolicyReloader,
    stopper: Stopper,
    finished: JoinHandle<Result<(), RunError>>,
    job_log: Option<Reopener>,
}

/// Asks a running server to stop; cheap to clone.
#[derive(Clone)]
pub struct Stopper(Arc<watch::Sender<Option<ShutdownRequest>>>);

impl Stopper {
    /// Stops the server: at once (after handling what peers already sent),
    /// or gracefully (no new connections; ends when no jobs are left).
    pub fn stop(&self, request: ShutdownRequest) {
        let _ = self.0.send(Some(request));
    }
}

impl Server {
    /// Prepares a server and starts it.
    pub async fn start(config: ServerConfig) -> Result<ServerHandle, StartError> {
        Ok(Server::prepare(config).await?.run())
    }

    /// Opens and replays the store, then binds the listeners.
    pub async fn prepare(config: ServerConfig) -> Result<Server, StartError> {
        // Read first: an unusable file stops start-up before anything is
        // opened or replayed.
        let policy_file = match &config.policy_file {
            Some(path) => Some(crate::policy_file::load(path).map_err(StartError::PolicyFile)?),
            None => None,
        };
        let mut engine_config = config.engine.clone();
        // The job log and the history are fed from the engine's reports.
        engine_config.report_ended_jobs |= config.ended_jobs.wants_reports();
        engine_config.report_payloads |= config.ended_jobs.job_log_results;
        let ended_jobs = EndedJobs::open(&config.ended_jobs, now_ms()).map_err(StartError::JobLog)?;
        let opened = match &config.store {
            Some(store_config) => Some(open_store(store_config, &mut engine_config).await?),
            None => None,
        };
        let mut engine = Engine::new(engine_config);
        // The clock is set before replay, so a stored epoch job already due
        // is queued in replay order instead of being scheduled behind the
        // rest.
        engine.tick(now_ms());
        // Paused before the replay, so that no replayed job of a paused
        // function is handed out or wakes a worker.
        if let Some(opened) = &opened {
            for name in &opened.paused {
                engine.restore_paused(name);
            }
            if !opened.paused.is_empty() {
                tracing::info!(functions = opened.paused.len(), "paused functions restored from the store");
            }
            for (pattern, value) in &opened.policies {
                let pattern = String::from_utf8_lossy(pattern);
                if let Err(e) = engine.restore_policy(&pattern, value) {
                    tracing::warn!(%pattern, error = %e, "a policy kept in the store cannot be used; it is ignored");
                }
            }
            if !opened.policies.is_empty() {
                tracing::info!(policies = opened.policies.len(), "operators' policies restored from the store");
            }
            for spec in &opened.cron {
                engine.restore_cron(spec.clone());
            }
            for (name, tick) in &opened.cron_ticks {
                engine.restore_cron_tick(name, *tick);
            }
        }
        if let Some(file) = policy_file {
            tracing::info!(functions = file.functions.len(), cron = file.cron.len(), "policy file loaded");
            engine.set_file_policies(file.functions);
            engine.set_file_cron(file.cron);
        }
        let (store, reader) = match opened {
            Some(opened) => {
                let (writer, reader) = replay(opened, config.store_connections, &mut engine).await?;
                (Some(writer), reader)
            }
            None => (None, None),
        };
        // After the replay: a replayed job of a cron run counts as that
        // run submitted, and missed runs are caught up.
        engine.start_cron();
        // The files are read before any port is bound: a missing or
        // unusable one stops start-up, naming the file.
        let certificates = match &config.tls {
            Some(settings) => Some(Arc::new(Certificates::load(settings).map_err(StartError::Tls)?)),
            None => None,
        };
        let acl = match &config.acl_file {
            Some(path) => Some(Arc::new(AclStore::load(path).map_err(StartError::Acl)?)),
            None => None,
        };
        let main_tls = certificates.clone().filter(|_| config.tls.as_ref().is_some_and(|t| t.on_main_port));
        let mut listeners: Vec<(TcpListener, Option<Arc<Certificates>>)> =
            listener::bind(&config.listen).await?.into_iter().map(|l| (l, main_tls.clone())).collect();
        if let (Some(port), Some(certificates)) = (config.tls.as_ref().and_then(|t| t.extra_port), &certificates) {
            let listen = crate::config::ListenConfig { port, ..config.listen.clone() };
            listeners.extend(listener::bind(&listen).await?.into_iter().map(|l| (l, Some(certificates.clone()))));
        }
        let local_addrs: Vec<SocketAddr> = listeners.iter().filter_map(|(l, _)| l.local_addr().ok()).collect();
        for ((_, tls), addr) in listeners.iter().zip(&local_addrs) {
            let tls = tls.is_some();
            tracing::info!(%addr, tls, version = %crate::version_string(), "sprocketd listening");
        }
        Ok(Server { config, engine, store, reader, listeners, local_addrs, certificates, acl, ended_jobs })
    }

    /// The server's certificates for the web port (`--web-tls`), when it has
    /// TLS settings.
    pub fn web_tls(&self) -> Option<sprocket_http::WebTlsHandle> {
        let certificates: Arc<dyn sprocket_http::WebTls> = self.certificates.clone()?;
        Some(sprocket_http::WebTlsHandle(certificates))
    }

    /// The access control list for the web port (`--acl-file`): the same
    /// list the Gearman port checks, so a reload or grant holds for both.
    pub fn web_acl(&self) -> Option<sprocket_http::WebAclHandle> {
        let store = self.acl.clone()?;
        Some(sprocket_http::WebAclHandle(Arc::new(crate::acl::WebAccess(store))))
    }

    /// The addresses the listeners are bound to (with the port the system
    /// chose when the configuration asked for port 0): the Gearman port's,
    /// then the `--ssl-port`'s.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The store this server writes to, if any.
    pub fn store_config(&self) -> Option<&StoreConfig> {
        self.config.store.as_ref()
    }

    /// Starts accepting connections and running jobs. Must be called
    /// within a tokio runtime.
    pub fn run(self) -> ServerHandle {
        let Server { config, engine, store, reader, listeners, local_addrs, certificates, acl, ended_jobs } = self;
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (control_tx, control_rx) = mpsc::channel::<Control>(CONTROL_QUEUE);
        let (shutdown_tx, shutdown_rx) = watch::channel(None::<ShutdownRequest>);
        let (stop_accepting_tx, stop_accepting_rx) = watch::channel(false);
        let limits = config.connections;
        let stats = SharedStats {
            traffic: Arc::default(),
            commits: store.as_ref().map(|(writer, _)| writer.stats()),
            submit_latency: Arc::default(),
        };
        let settings = Arc::new(ConnSettings {
            traffic: stats.traffic.clone(),
            max_packet_size: limits.max_packet_size,
            backlog: outlet::BacklogLimits::new(limits.max_reply_backlog, limits.max_packet_size),
            total_backlog: Arc::new(outlet::TotalBacklog::new(limits.max_total_reply_backlog)),
            acl: acl.clone(),
        });
        let next_conn = Arc::new(AtomicU64::new(1));
        let limit = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
        // Every connection task holds a clone; when all are gone, every
        // reply (such as the OK to `shutdown`) has been written.
        let (flushed_tx, flushed_rx) = mpsc::channel::<()>(1);
        for (l, tls) in listeners {
            let acceptor = listener::Acceptor {
                events: events_tx.clone(),
                settings: settings.clone(),
                next_conn: next_conn.clone(),
                limit: limit.clone(),
                keepalive: config.keepalive,
                stop: stop_accepting_rx.clone(),
                flushed: flushed_tx.clone(),
                tls,
            };
            tokio::spawn(listener::accept_loop(l, acceptor));
        }
        drop(flushed_tx);
        drop(events_tx);

        let activity = busy_poll::Activity::default();
        let poller = start_busy_polling(config.busy_poll, &activity);
        let job_log = ended_jobs.reopener();
        let retention = engine.config().records.retention;
        let mut task = EngineTask::new(engine, events_rx, control_rx, store, shutdown_rx, stop_accepting_tx, activity)
            .with_ended_jobs(ended_jobs)
            .with_submit_latency(stats.submit_latency.clone());
        if let Some(reader) = reader {
            let (replies_tx, replies_rx) = mpsc::unbounded_channel();
            let jobs = record_reader::spawn(reader, retention, replies_tx);
            task = task.with_record_reader(jobs, replies_rx);
        }
        // A runtime task, not the caller's: wake-ups between it and the
        // connections then stay on the runtime's own threads.
        let engine_task = tokio::spawn(task.run());
        let finished = tokio::spawn(finish(engine_task, flushed_rx, poller));
        let link = EngineLink::new(control_tx, stats);
        ServerHandle {
            local_addrs,
            link: link.clone(),
            certificates: CertificateReloader(certificates),
            acl: AclReloader(acl),
            policy: PolicyReloader::new(config.policy_file.clone(), link.clone()),
            stopper: Stopper(Arc::new(shutdown_tx)),
            finished,
            job_log,
        }
    }
}

impl ServerHandle {
    /// The addresses the listeners are bound to.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The typed query and command channel into the engine task.
    pub fn link(&self) -> EngineLink {
        self.link.clone()
    }

    /// Something that reloads the TLS certificate, key and CA files (a
    /// signal handler); it does nothing for a server without TLS.
    pub fn certificate_reloader(&self) -> CertificateReloader {
        self.certificates.clone()
    }

    /// Something that rereads the ACL file (a signal handler); it does
    /// nothing for a server without `--acl-file`.
    pub fn acl_reloader(&self) -> AclReloader {
        self.acl.clone()
    }

    /// Something that rereads the policy file (a signal handler); it does
    /// nothing for a server without `--policy-file`.
    pub fn policy_reloader(&self) -> PolicyReloader {
        self.policy.clone()
    }

    /// Something that can stop the server from elsewhere (a signal handler).
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// What reopens the job log file (SIGHUP); `None` without a job log.
    pub fn job_log_reopener(&self) -> Option<Reopener> {
        self.job_log.clone()
    }

    /// Stops the server (see [`Stopper::stop`]); [`ServerHandle::wait`]
    /// waits for the end.
    pub fn shutdown(&self, request: ShutdownRequest) {
        self.stopper.stop(request);
    }

    /// Waits until the server has stopped: the engine task is done, the
    /// last replies are written (up to 2 s) and the store writer has
    /// committed what it was given.
    pub async fn wait(self) -> Result<(), RunError> {
        let ServerHandle { finished, stopper, .. } = self;
        let result = finished.await.map_err(RunError::EngineTask).and_then(|r| r);
        drop(stopper);
        result
    }
}

/// A store opened for the engine, before its jobs are replayed.
struct OpenedStore {
    store: Box<dyn Store>,
    /// The connection that reads records, expires them and reserves
    /// handles, when the store keeps records.
    reader: Option<Box<dyn Store>>,
    /// The records of the jobs still queued, by their rows' keys.
    queued: HashMap<JobKey, Record>,
    /// The functions an operator paused, as the store kept them.
    paused: Vec<Bytes>,
    /// Operators' run-time policies (pattern, JSON), as the store kept
    /// them.
    policies: Vec<(Bytes, String)>,
    /// Cron entries added at run time, as the store kept them.
    cron: Vec<CronSpec>,
    /// The last run submitted per cron entry (Unix seconds).
    cron_ticks: Vec<(String, i64)>,
}

/// Opens the store and, when it keeps records, its reader: reserves the
/// first block of handle numbers, reads the records of queued jobs and the
/// paused functions, and tells `engine_config` that records and settings
/// are durable (settings are written through the reader).
async fn open_store(store_config: &StoreConfig, engine_config: &mut EngineConfig) -> Result<OpenedStore, StartError> {
    let mut store = sprocket_store::open(store_config).await.map_err(StartError::OpenStore)?;
    if !store.keeps_records() {
        return Ok(OpenedStore::without_reader(store));
    }
    let describe = store.describe();
    let records_error = |error| StartError::Replay { store: describe.clone(), error };
    let mut reader = match store.open_reader().await.map_err(records_error)? {
        Some(reader) => reader,
        None => return Ok(OpenedStore::without_reader(store)),
    };
    engine_config.first_handle = reader.reserve_handles(HANDLE_BLOCK).await.map_err(records_error)?;
    engine_config.handle_block = HANDLE_BLOCK;
    engine_config.records.durable = engine_config.persist == PersistMode::Immediate;
    let queued = reader
        .queued_handles()
        .await
        .map_err(records_error)?
        .into_iter()
        .filter_map(|q| Some((q.key, q.record?)))
        .collect();
    let paused =
        reader.load_settings(PAUSED_SETTING).await.map_err(records_error)?.into_iter().map(|(name, _)| name).collect();
    let policies = reader.load_settings(POLICY_SETTING).await.map_err(records_error)?;
    let (cron, cron_ticks) = load_cron_settings(reader.as_mut()).await.map_err(records_error)?;
    engine_config.settings_durable = true;
    Ok(OpenedStore { store, reader: Some(reader), queued, paused, policies, cron, cron_ticks })
}

impl OpenedStore {
    fn without_reader(store: Box<dyn Store>) -> OpenedStore {
        OpenedStore {
            store,
            reader: None,
            queued: HashMap::new(),
            paused: Vec::new(),
            policies: Vec::new(),
            cron: Vec::new(),
            cron_ticks: Vec::new(),
        }
    }
}

/// The cron entries added at run time and each entry's last run, as the
/// store kept them. A value that cannot be read (written by a later
/// version, or damaged) is logged and skipped rather than stopping the
/// server.
async fn load_cron_settings(
    reader: &mut dyn Store,
) -> Result<(Vec<CronSpec>, Vec<(String, i64)>), sprocket_store::StoreError> {
    let mut entries = Vec::new();
    for (name, value) in reader.load_settings(CRON_SETTING).await? {
        match CronSpec::from_json(&value) {
            Ok(spec) => entries.push(spec),
            Err(e) => tracing::warn!(entry = %String::from_utf8_lossy(&name), error = %e,
                "a cron entry kept in the store cannot be read; it is skipped"),
        }
    }
    let mut ticks = Vec::new();
    for (name, value) in reader.load_settings(CRON_TICK_SETTING).await? {
        match value.trim().parse::<i64>() {
            Ok(tick) => ticks.push((String::from_utf8_lossy(&name).into_owned(), tick)),
            Err(_) => tracing::warn!(entry = %String::from_utf8_lossy(&name), value = %value,
                "a cron entry's last run kept in the store cannot be read; it is skipped"),
        }
    }
    if !entries.is_empty() || !ticks.is_empty() {
        tracing::info!(
            entries = entries.len(),
            runs = ticks.len(),
            "cron entries and last runs restored from the store"
        );
    }
    Ok((entries, ticks))
}

/// Replays the store's jobs into the engine (each queued job with its
/// record, and so its handle, when the store kept one), and starts the
/// writer on the connections asked for. Hands back the record reader.
async fn replay(
    opened: OpenedStore,
    connections: u16,
    engine: &mut Engine,
) -> Result<(StoreLink, Option<Box<dyn Store>>), StartError> {
    let OpenedStore { mut store, reader, mut queued, .. } = opened;
    let mut replay_part = |jobs: Vec<sprocket_store::StoredJob>| {
        for j in jobs {
            let record = queued.remove(&JobKey { function: j.function.clone(), unique: j.unique.clone() });
            // With --store-queue-on-shutdown the rows stay until their jobs
            // end (gearmand 1.1.20; 1.1.21 emptied the table here, so a
            // crash after a restart lost every replayed job).
            engine.replay(ReplayJob {
                function: j.function,
                unique: j.unique,
                priority: j.priority,
                data: j.data,
                when: j.when,
                record,
            });
        }
    };
    let replayed = store
        .load_each(&mut replay_part)
        .await
        .map_err(|error| StartError::Replay { store: store.describe(), error })?;
    tracing::info!(store = %store.describe(), jobs = replayed, "replayed stored jobs");
    close_orphan_records(&mut store, queued, now_ms()).await;
    release_freed_memory();
    let stores = writer::open_streams(store, usize::from(connections)).await;
    Ok((writer::spawn_streams(stores, WriterConfig::default()), reader))
}

/// Ends the records of jobs that are not queued any more although their
/// records say so (their rows are gone: an insert reported failed that had
/// landed after all, or an end whose record was dropped while the database
/// was down), as `dropped` with the open attempt `interrupted`: left as they
/// were, they would never expire and would name jobs that no longer exist.
async fn close_orphan_records(store: &mut Box<dyn Store>, orphans: HashMap<JobKey, Record>, now: u64) {
    if orphans.is_empty() {
        return;
    }
    let mut ops = Vec::with_capacity(orphans.len());
    for (key, mut record) in orphans {
        let _ = record.attempt_ended(sprocket_records::AttemptEnd::Interrupted, now);
        if record.ended(sprocket_records::Outcome::Dropped, now, sprocket_records::Limits::default()).is_err() {
            continue;
        }
        match sprocket_store::RecordRow::new(&record, &key.unique) {
            Ok(row) => ops.push(StoreOp::Record(row)),
            Err(e) => tracing::warn!(error = %e, "a job record cannot be stored"),
        }
    }
    let n = ops.len();
    match store.apply(&ops).await {
        Ok(()) => tracing::info!(records = n, "ended the records of jobs whose queue rows are gone, as dropped"),
        Err(e) => tracing::warn!(error = %e, "cannot end the records of jobs whose queue rows are gone"),
    }
}

/// The writer and its commit reports.
type StoreLink = (WriterHandle, mpsc::UnboundedReceiver<Completion>);

/// Starts the busy poller when the flag and the runtime allow it.
fn start_busy_polling(flag: Option<u64>, activity: &busy_poll::Activity) -> Option<JoinHandle<()>> {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let single_thread = tokio::runtime::Handle::current().runtime_flavor() == RuntimeFlavor::CurrentThread;
    match busy_poll::window(flag, cpus) {
        Some(window) if single_thread => {
            tracing::info!(micros = window.as_micros() as u64, "busy polling after activity");
            return Some(tokio::spawn(activity.clone().poll_after_activity(window)));
        }
        Some(_) => tracing::info!("busy polling off: it needs the single-threaded runtime (-t 1)"),
        None if flag == Some(0) => tracing::info!("busy polling off (--busy-poll 0)"),
        None => tracing::info!(cpus, "busy polling off: only one CPU to run on"),
    }
    None
}

/// After the engine task ends: waits for the last replies to be written,
/// stores the queue if it is stored only at shutdown, and closes the writer.
async fn finish(
    engine_task: JoinHandle<(Engine, Option<WriterHandle>)>,
    mut flushed: mpsc::Receiver<()>,
    poller: Option<JoinHandle<()>>,
) -> Result<(), RunError> {
    let stopped = engine_task.await;
    if let Some(poller) = poller {
        poller.abort();
    }
    let (mut engine, writer) = stopped.map_err(RunError::EngineTask)?;
    let _ = tokio::time::timeout(Duration::from_secs(2), flushed.recv()).await;
    if let Some(w) = writer {
        if engine.config().persist == PersistMode::OnShutdown {
            let n = engine.dump_persisted_jobs();
            tracing::info!(jobs = n, "storing the queue at shutdown");
        }
        for (seq, op) in engine.take_outbox().persist {
            if let Some(op) = to_store_op(op) {
                w.submit(seq, op);
            }
        }
        w.close().await;
    }
    tracing::info!("sprocketd stopped");
    Ok(())
}

/// Hands the heap freed after a replay back to the OS. The rows loaded
/// from the store are copied into compact job records and dropped, but
/// they were interleaved with those records on the heap, so glibc keeps
/// the freed pages (see docs/benchmarks.md, "Memory after replaying the
/// store").
#[allow(unsafe_code)]
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own heap; it has no
    // preconditions and is safe to call at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
