//! The worker: registers functions and runs the jobs the servers hand out.

mod job;
mod session;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::addr::{IntoServers, ServerAddr};
use crate::backoff::Backoff;
use crate::error::{Error, Result};
use crate::tls::TlsConfig;
pub use job::{Job, JobError};

/// The future a handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = std::result::Result<Bytes, JobError>> + Send>>;

pub(crate) type Handler = Arc<dyn Fn(Job) -> HandlerFuture + Send + Sync>;

#[derive(Clone)]
pub(crate) struct Function {
    pub(crate) name: Bytes,
    pub(crate) timeout: Option<Duration>,
    pub(crate) handler: Handler,
}

/// Settings of a [`Worker`].
///
/// ```
/// use sprocket_client::WorkerOptions;
/// let o = WorkerOptions { concurrency: 4, ..WorkerOptions::default() };
/// assert_eq!(o.concurrency, 4);
/// ```
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Jobs run at the same time, over all servers together (at least 1).
    pub concurrency: usize,
    /// Limit for opening a TCP connection.
    pub connect_timeout: Duration,
    /// First wait before reconnecting to a failed server; doubles per failure.
    pub retry_initial: Duration,
    /// Longest wait before reconnecting.
    pub retry_max: Duration,
    /// Client id sent with SET_CLIENT_ID (shown by the admin `workers` listing).
    pub client_id: Option<String>,
    /// Run at most this many jobs, over all servers together, and stop once
    /// they have finished (`gearman -c N`).
    pub max_jobs: Option<u64>,
    /// Limit for the server's answer to GRAB_JOB and to an idle check; past
    /// it the connection is considered dead and reopened.
    pub response_timeout: Duration,
    /// How long a connection may stay quiet while the worker waits (asleep
    /// after PRE_SLEEP, or with every slot busy) before it is checked with
    /// an ECHO_REQ. A server that lost power, or a proxy that dropped the
    /// server side, is otherwise never noticed: no NOOP ever comes.
    pub idle_check: Duration,
    /// Speak TLS to every server, verifying its certificate; `None` is
    /// plain TCP. A failed handshake counts as a failed connection: the
    /// worker retries it with backoff, as for a server that is down.
    pub tls: Option<TlsConfig>,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            concurrency: 1,
            connect_timeout: Duration::from_secs(5),
            retry_initial: Duration::from_millis(200),
            retry_max: Duration::from_secs(30),
            client_id: None,
            max_jobs: None,
            response_timeout: Duration::from_secs(30),
            idle_check: Duration::from_secs(10),
            tls: None,
        }
    }
}

/// A Gearman worker serving one or several job servers.
///
/// ```no_run
/// # async fn demo() -> sprocket_client::Result<()> {
/// use sprocket_client::{Job, JobError, Worker};
/// let worker = Worker::new("127.0.0.1:4730")?
///     .register("reverse", |job: Job| async move {
///         let mut v = job.payload().to_vec();
///         v.reverse();
///         Ok::<_, JobError>(v)
///     })
///     .concurrency(2);
/// let handle = worker.spawn()?;
/// // ... later: finish the running jobs and stop.
/// handle.shutdown().await?;
/// # Ok(()) }
/// ```
pub struct Worker {
    servers: Vec<ServerAddr>,
    options: WorkerOptions,
    functions: Vec<Function>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.functions.iter().map(|f| String::from_utf8_lossy(&f.name).into_owned()).collect();
        f.debug_struct("Worker").field("servers", &self.servers).field("functions", &names).finish()
    }
}

/// Counters reported when a worker ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Jobs that finished (completed, failed or raised an exception).
    pub jobs_done: u64,
}

pub(crate) struct Shared {
    pub(crate) functions: HashMap<Bytes, Function>,
    pub(crate) order: Vec<Function>,
    pub(crate) options: WorkerOptions,
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) stop_tx: watch::Sender<bool>,
    /// The runs `max_jobs` still allows, shared by the sessions of all servers.
    pub(crate) quota: Option<Arc<Semaphore>>,
    pub(crate) done: AtomicU64,
}

/// One of the `max_jobs` runs, taken before asking a server for a job.
/// Dropped unused (NO_JOB, or the connection failed) it is given back.
pub(crate) struct Reservation(Option<OwnedSemaphorePermit>);

impl Reservation {
    /// A job was assigned: the run is spent for good.
    pub(crate) fn spend(self) {
        if let Some(p) = self.0 {
            p.forget();
        }
    }
}

impl Shared {
    /// Reserves a run before GRAB_JOB, waiting while every run `max_jobs`
    /// allows is spent or being asked for by another server's session.
    /// Checking a counter that only grows on assignment let sessions on
    /// several servers each grab at once and overshoot `max_jobs`.
    /// `None` when the quota is closed.
    pub(crate) async fn reserve(&self) -> Option<Reservation> {
        match &self.quota {
            None => Some(Reservation(None)),
            Some(q) => q.clone().acquire_owned().await.ok().map(|p| Reservation(Some(p))),
        }
    }

    pub(crate) fn job_finished(&self) {
        let done = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        if self.options.max_jobs.is_some_and(|m| done >= m) {
            let _ = self.stop_tx.send(true);
        }
    }
}

impl Worker {
    /// A worker for these servers (e.g. `"a:4730,b"`) with default options.
    pub fn new(servers: impl IntoServers) -> Result<Worker> {
        Worker::with_options(servers, WorkerOptions::default())
    }

    /// A worker with explicit options.
    pub fn with_options(servers: impl IntoServers, options: WorkerOptions) -> Result<Worker> {
        let servers = servers.into_servers()?;
        if servers.is_empty() {
            return Err(Error::NoServers);
        }
        Ok(Worker { servers, options, functions: Vec::new() })
    }

    /// Registers an async handler for `function` (CAN_DO). The handler's
    /// `Ok` value becomes WORK_COMPLETE; an `Err` becomes WORK_FAIL or
    /// WORK_EXCEPTION (see [`JobError`]); a panic becomes WORK_FAIL.
    pub fn register<F, Fut, T>(self, function: impl Into<Bytes>, handler: F) -> Worker
    where
        F: Fn(Job) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<T, JobError>> + Send + 'static,
        T: Into<Bytes>,
    {
        self.register_inner(function.into(), None, handler)
    }

    /// Like [`Worker::register`], with CAN_DO_TIMEOUT: the server takes the
    /// job back if it runs longer than `timeout`.
    ///
    /// ```no_run
    /// # fn demo(w: sprocket_client::Worker) -> sprocket_client::Worker {
    /// use std::time::Duration;
    /// w.register_with_timeout("slow", Duration::from_secs(30), |_job| async { Ok::<_, sprocket_client::JobError>("done") })
    /// # }
    /// ```
    pub fn register_with_timeout<F, Fut, T>(self, function: impl Into<Bytes>, timeout: Duration, handler: F) -> Worker
    where
        F: Fn(Job) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<T, JobError>> + Send + 'static,
        T: Into<Bytes>,
    {
        self.register_inner(function.into(), Some(timeout), handler)
    }

    fn register_inner<F, Fut, T>(mut self, name: Bytes, timeout: Option<Duration>, handler: F) -> Worker
    where
        F: Fn(Job) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<T, JobError>> + Send + 'static,
        T: Into<Bytes>,
    {
        let handler: Handler = Arc::new(move |job| {
            let fut = handler(job);
            Box::pin(async move { fut.await.map(Into::into) })
        });
        self.functions.retain(|f| f.name != name);
        self.functions.push(Function { name, timeout, handler });
        self
    }

    /// Sets how many jobs may run at once (over all servers).
    pub fn concurrency(mut self, n: usize) -> Worker {
        self.options.concurrency = n.max(1);
        self
    }

    /// Runs at most `n` jobs (over all servers) and stops after they finished.
    pub fn max_jobs(mut self, n: u64) -> Worker {
        self.options.max_jobs = Some(n);
        self
    }

    /// Sets the id shown by the admin `workers` listing.
    pub fn client_id(mut self, id: impl Into<String>) -> Worker {
        self.options.client_id = Some(id.into());
        self
    }

    /// Starts serving in background tasks (needs a tokio runtime).
    pub fn spawn(self) -> Result<WorkerHandle> {
        if self.functions.is_empty() {
            return Err(Error::InvalidArgument("a worker needs at least one function".into()));
        }
        for f in &self.functions {
            if f.name.contains(&0) {
                return Err(Error::InvalidArgument("function name contains a NUL byte".into()));
            }
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let concurrency = self.options.concurrency.max(1);
        let max_jobs = self.options.max_jobs;
        let shared = Arc::new(Shared {
            functions: self.functions.iter().map(|f| (f.name.clone(), f.clone())).collect(),
            order: self.functions,
            options: self.options,
            permits: Arc::new(Semaphore::new(concurrency)),
            stop_tx,
            quota: max_jobs.map(quota),
            done: AtomicU64::new(0),
        });
        let tasks =
            self.servers.into_iter().map(|addr| tokio::spawn(serve(shared.clone(), addr, stop_rx.clone()))).collect();
        Ok(WorkerHandle { shared, tasks })
    }

    /// Serves until `signal` resolves (or `max_jobs` is reached), then
    /// finishes the running jobs and returns.
    ///
    /// ```no_run
    /// # async fn demo(w: sprocket_client::Worker) -> sprocket_client::Result<()> {
    /// w.run_until(async { let _ = tokio::signal::ctrl_c().await; }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> Result<WorkerStats> {
        let handle = self.spawn()?;
        let mut stopped = handle.shared.stop_tx.subscribe();
        tokio::select! {
            _ = signal => handle.stop(),
            _ = stopped.wait_for(|s| *s) => {}
        }
        handle.wait().await
    }
}

/// The semaphore holding `max_jobs` runs (capped at what tokio allows).
fn quota(max_jobs: u64) -> Arc<Semaphore> {
    let n = usize::try_from(max_jobs).unwrap_or(usize::MAX).min(Semaphore::MAX_PERMITS);
    Arc::new(Semaphore::new(n))
}

/// Controls a running worker.
pub struct WorkerHandle {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl WorkerHandle {
    /// Asks the worker to stop: no new jobs are taken; running ones finish.
    pub fn stop(&self) {
        let _ = self.shared.stop_tx.send(true);
    }

    /// Jobs finished so far.
    pub fn jobs_done(&self) -> u64 {
        self.shared.done.load(Ordering::SeqCst)
    }

    /// True once a stop was requested (by [`WorkerHandle::stop`] or `max_jobs`).
    pub fn stopping(&self) -> bool {
        *self.shared.stop_tx.borrow()
    }

    /// Resolves when a stop is requested.
    pub async fn stopped(&self) {
        let mut rx = self.shared.stop_tx.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Waits until the worker has stopped and its jobs are finished.
    pub async fn wait(self) -> Result<WorkerStats> {
        for t in self.tasks {
            let _ = t.await;
        }
        Ok(WorkerStats { jobs_done: self.shared.done.load(Ordering::SeqCst) })
    }

    /// [`WorkerHandle::stop`] then [`WorkerHandle::wait`].
    pub async fn shutdown(self) -> Result<WorkerStats> {
        self.stop();
        self.wait().await
    }
}

/// Keeps one server served: connect, run a session, reconnect with backoff.
async fn serve(shared: Arc<Shared>, addr: ServerAddr, mut stop: watch::Receiver<bool>) {
    let mut backoff = Backoff::new(shared.options.retry_initial, shared.options.retry_max);
    loop {
        if *stop.borrow() {
            return;
        }
        let (connected, res) = session::run(&shared, &addr, stop.clone()).await;
        if connected {
            backoff.succeeded();
        }
        match res {
            Ok(()) => return,
            Err(e) => {
                if *stop.borrow() {
                    return;
                }
                let wait = backoff.failed(Instant::now(), e.to_string());
                tracing::warn!(server = %addr, error = %e, retry_in = ?wait, "worker connection failed");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
}
