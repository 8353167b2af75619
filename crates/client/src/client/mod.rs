//! The client: submits jobs and asks about them.

mod connection;
mod records;
mod stream;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sprocket_proto::{Request, Response, SubmitMode};
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::addr::{IntoServers, ServerAddr};
use crate::backoff::Backoff;
use crate::conn;
use crate::error::{Error, Result};
use crate::job::{JobEvent, JobHandle, JobRequest, JobStatus, UniqueStatus};
use crate::tls::TlsConfig;
use connection::{Command, CommandSender, Reply};
pub use records::{RecordFilter, RECORDS_FUNCTION, RECORD_FUNCTION, RESULT_FUNCTION};
pub use stream::JobStream;

/// Settings of a [`Client`].
///
/// ```
/// use std::time::Duration;
/// use sprocket_client::ClientOptions;
/// let opts = ClientOptions { job_timeout: Some(Duration::from_secs(60)), ..ClientOptions::default() };
/// assert!(opts.exceptions);
/// ```
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Limit for opening a TCP connection.
    pub connect_timeout: Duration,
    /// Limit for a server's answer to one request (JOB_CREATED, STATUS_RES, ECHO_RES, OPTION_RES).
    ///
    /// A server that does not answer in time is treated as down: its
    /// connection is closed (failing the other requests waiting on it), it
    /// is skipped with backoff, and the request moves on to the next server.
    /// A submission that reached a hung server may still be carried out
    /// when it resumes, so after a failover a job can exist twice: delivery
    /// is at-least-once, as with other Gearman clients. Give jobs a unique
    /// id (and handlers idempotence) where a duplicate would hurt.
    pub response_timeout: Duration,
    /// Limit for a foreground job to finish; `None` waits forever.
    pub job_timeout: Option<Duration>,
    /// Ask each server to forward WORK_EXCEPTION (OPTION_REQ `exceptions`).
    /// Without it a worker's exception reaches the client as a failure.
    pub exceptions: bool,
    /// First wait before a failed server is tried again; doubles per failure.
    pub retry_initial: Duration,
    /// Longest wait before a failed server is tried again.
    pub retry_max: Duration,
    /// Client id sent with SET_CLIENT_ID (shown by the admin `workers` listing).
    pub client_id: Option<String>,
    /// Speak TLS to every server, verifying its certificate; `None` is
    /// plain TCP. A failed handshake fails that server's connection with
    /// [`Error::Tls`] (and the client moves on to the next server).
    pub tls: Option<TlsConfig>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(30),
            job_timeout: None,
            exceptions: true,
            retry_initial: Duration::from_millis(200),
            retry_max: Duration::from_secs(30),
            client_id: None,
            tls: None,
        }
    }
}

struct Slot {
    addr: ServerAddr,
    state: Mutex<SlotState>,
}

struct SlotState {
    sender: Option<CommandSender>,
    backoff: Backoff,
}

struct Inner {
    slots: Vec<Slot>,
    options: ClientOptions,
    next: AtomicUsize,
}

/// An async Gearman client over one or several job servers.
///
/// Cloning is cheap and shares the connections. Jobs are spread over the
/// servers (by unique id when there is one, else round-robin); a server
/// that cannot be reached is skipped and tried again later with backoff.
/// Many jobs may be in flight on one connection at once.
///
/// ```no_run
/// # async fn demo() -> sprocket_client::Result<()> {
/// use sprocket_client::Client;
/// let client = Client::new("127.0.0.1:4730")?;
/// let result = client.submit("reverse", "Rasmus").await?;
/// assert_eq!(&result[..], b"sumsaR");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let servers: Vec<String> = self.inner.slots.iter().map(|s| s.addr.to_string()).collect();
        f.debug_struct("Client").field("servers", &servers).finish()
    }
}

/// What each job of a batch came to.
pub type BatchResult = Vec<Result<Bytes>>;

impl Client {
    /// A client for these servers (e.g. `"a:4730,b"`) with default options.
    /// No connection is opened until the first request.
    pub fn new(servers: impl IntoServers) -> Result<Client> {
        Client::with_options(servers, ClientOptions::default())
    }

    /// A client with explicit options.
    ///
    /// ```
    /// use sprocket_client::{Client, ClientOptions};
    /// let c = Client::with_options("h1:4730,h2:4731", ClientOptions::default()).unwrap();
    /// assert_eq!(c.servers().len(), 2);
    /// ```
    pub fn with_options(servers: impl IntoServers, options: ClientOptions) -> Result<Client> {
        let servers = servers.into_servers()?;
        if servers.is_empty() {
            return Err(Error::NoServers);
        }
        let slots = servers
            .into_iter()
            .map(|addr| Slot {
                addr,
                state: Mutex::new(SlotState {
                    sender: None,
                    backoff: Backoff::new(options.retry_initial, options.retry_max),
                }),
            })
            .collect();
        Ok(Client { inner: Arc::new(Inner { slots, options, next: AtomicUsize::new(0) }) })
    }

    /// The configured servers.
    pub fn servers(&self) -> Vec<ServerAddr> {
        self.inner.slots.iter().map(|s| s.addr.clone()).collect()
    }

    /// The client's options.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// Runs a foreground job at normal priority and returns its result.
    /// WORK_FAIL becomes [`Error::JobFailed`], WORK_EXCEPTION [`Error::JobException`].
    ///
    /// ```no_run
    /// # async fn demo(client: sprocket_client::Client) -> sprocket_client::Result<()> {
    /// let lines = client.submit("wc", "a\nb\n").await?;
    /// # Ok(()) }
    /// ```
    pub async fn submit(&self, function: impl Into<Bytes>, payload: impl Into<Bytes>) -> Result<Bytes> {
        self.submit_job(JobRequest::new(function, payload)).await
    }

    /// Runs a foreground job described by `job` and returns its result.
    pub async fn submit_job(&self, job: JobRequest) -> Result<Bytes> {
        self.submit_with(job, |_| {}).await
    }

    /// Runs a foreground job, calling `on_event` for every event (created,
    /// data, warning, status, and the final one) as it arrives.
    ///
    /// ```no_run
    /// # async fn demo(client: sprocket_client::Client) -> sprocket_client::Result<()> {
    /// use sprocket_client::{JobEvent, JobRequest};
    /// let result = client
    ///     .submit_with(JobRequest::new("reverse", "Rasmus"), |ev| {
    ///         if let Some(p) = ev.percent() {
    ///             println!("{p}% Complete");
    ///         }
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn submit_with(&self, job: JobRequest, mut on_event: impl FnMut(&JobEvent)) -> Result<Bytes> {
        let limit = job.timeout.or(self.inner.options.job_timeout);
        let work = async {
            let mut stream = self.submit_stream(job).await?;
            on_event(&JobEvent::Created(stream.handle().clone()));
            loop {
                let ev = stream.next_event().await?;
                on_event(&ev);
                match ev {
                    JobEvent::Complete(data) => return Ok(data),
                    JobEvent::Failed => return Err(Error::JobFailed { handle: stream.handle().to_string() }),
                    JobEvent::Exception(data) => {
                        return Err(Error::JobException { handle: stream.handle().to_string(), data })
                    }
                    _ => {}
                }
            }
        };
        match limit {
            None => work.await,
            Some(after) => tokio::time::timeout(after, work)
                .await
                .unwrap_or(Err(Error::Timeout { what: "the job's result", after })),
        }
    }

    /// Submits a foreground job and returns once the server created it; the
    /// returned [`JobStream`] yields its events (a `futures::Stream`).
    ///
    /// ```no_run
    /// # async fn demo(client: sprocket_client::Client) -> sprocket_client::Result<()> {
    /// use futures::StreamExt;
    /// use sprocket_client::{JobEvent, JobRequest};
    /// let mut stream = client.submit_stream(JobRequest::new("reverse", "abc")).await?;
    /// while let Some(ev) = stream.next().await {
    ///     if let JobEvent::Complete(data) = ev { println!("{data:?}"); }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn submit_stream(&self, job: JobRequest) -> Result<JobStream> {
        if job.epoch.is_some() {
            return Err(Error::InvalidArgument("epoch jobs are background jobs; use submit_background".into()));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let (handle, server) = self.create(&job, false, Some(tx)).await?;
        Ok(JobStream::new(handle, rx, self.inner.slots[server].addr.to_string()))
    }

    /// Submits a background job at normal priority and returns its handle.
    pub async fn submit_background(&self, function: impl Into<Bytes>, payload: impl Into<Bytes>) -> Result<JobHandle> {
        self.submit_background_job(JobRequest::new(function, payload)).await
    }

    /// Submits a background job (any priority, unique id, or epoch time).
    ///
    /// When a server fails to confirm the job in time the next server is
    /// tried; the first may still create it later (at-least-once, see
    /// [`ClientOptions::response_timeout`]).
    ///
    /// ```no_run
    /// # async fn demo(client: sprocket_client::Client) -> sprocket_client::Result<()> {
    /// use sprocket_client::{JobRequest, Priority};
    /// let handle = client.submit_background_job(JobRequest::new("reverse", "x").priority(Priority::Low)).await?;
    /// let status = client.status(&handle).await?;
    /// # Ok(()) }
    /// ```
    pub async fn submit_background_job(&self, job: JobRequest) -> Result<JobHandle> {
        Ok(self.create(&job, true, None).await?.0)
    }

    /// Runs many foreground jobs at once (like Islandora's
    /// `islandora_job_submit_batch`) and returns, in order, each job's result
    /// or its own error.
    ///
    /// ```no_run
    /// # async fn demo(client: sprocket_client::Client) {
    /// use sprocket_client::JobRequest;
    /// let names = ["Will", "Adam", "Morgan"];
    /// let results = client.submit_batch(names.iter().map(|n| JobRequest::new("hello", n.to_string()))).await;
    /// let all_ok = results.iter().all(|r| r.is_ok());
    /// # }
    /// ```
    pub async fn submit_batch(&self, jobs: impl IntoIterator<Item = JobRequest>) -> BatchResult {
        futures::future::join_all(jobs.into_iter().map(|job| self.submit_job(job))).await
    }

    /// Submits many background jobs at once; returns each handle or error, in order.
    pub async fn submit_background_batch(&self, jobs: impl IntoIterator<Item = JobRequest>) -> Vec<Result<JobHandle>> {
        futures::future::join_all(jobs.into_iter().map(|job| self.submit_background_job(job))).await
    }

    /// Asks for the status of a job (GET_STATUS). The query goes to the
    /// server that issued the handle when the handle records one of this
    /// client's servers (see [`JobHandle::server`]), else to each server
    /// in turn until one knows the job.
    ///
    /// ```no_run
    /// # async fn demo(client: sprocket_client::Client, handle: sprocket_client::JobHandle) -> sprocket_client::Result<()> {
    /// let st = client.status(&handle).await?;
    /// if st.known { println!("{}/{}", st.numerator, st.denominator); }
    /// # Ok(()) }
    /// ```
    pub async fn status(&self, handle: &JobHandle) -> Result<JobStatus> {
        let order: Vec<usize> = match handle.server().and_then(|s| self.slot_of(s)) {
            Some(i) => vec![i],
            None => (0..self.inner.slots.len()).collect(),
        };
        let mut first: Option<Result<JobStatus>> = None;
        for i in order {
            let req = Request::GetStatus { handle: handle.0.clone() };
            let res = self.single_on(i, req, "STATUS_RES").await.and_then(|r| match r {
                Response::StatusRes { handle, known, running, numerator, denominator } => {
                    let handle = JobHandle::issued(handle, &self.inner.slots[i].addr);
                    Ok(JobStatus { handle, known, running, numerator, denominator })
                }
                other => Err(unexpected(&other)),
            });
            if keep_answer(&mut first, res, |s| s.known) {
                break;
            }
        }
        first.unwrap_or(Err(Error::NoServers))
    }

    /// Asks every server for the job with this unique id (GET_STATUS_UNIQUE)
    /// and returns the first that knows it.
    pub async fn status_unique(&self, unique: impl Into<Bytes>) -> Result<UniqueStatus> {
        let unique = unique.into();
        let mut first: Option<Result<UniqueStatus>> = None;
        for i in 0..self.inner.slots.len() {
            let req = Request::GetStatusUnique { unique: unique.clone() };
            let res = self.single_on(i, req, "STATUS_RES_UNIQUE").await.and_then(|r| match r {
                Response::StatusResUnique { unique, known, running, numerator, denominator, clients } => {
                    Ok(UniqueStatus { unique, known, running, numerator, denominator, clients })
                }
                other => Err(unexpected(&other)),
            });
            if keep_answer(&mut first, res, |s| s.known) {
                break;
            }
        }
        first.unwrap_or(Err(Error::NoServers))
    }

    /// Sends ECHO_REQ to one server and returns the echoed bytes; a cheap ping.
    pub async fn echo(&self, data: impl Into<Bytes>) -> Result<Bytes> {
        let data = data.into();
        let mut last = None;
        for i in self.order(None) {
            match self.single_on(i, Request::EchoReq { data: data.clone() }, "ECHO_RES").await {
                Ok(Response::EchoRes { data }) => return Ok(data),
                Ok(other) => return Err(unexpected(&other)),
                Err(e) if moves_on(&e) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(Error::NoServers))
    }

    /// Sends ECHO_REQ to every server; one result per server, in order.
    pub async fn echo_all(&self, data: impl Into<Bytes>) -> Vec<(ServerAddr, Result<Bytes>)> {
        let data = data.into();
        let mut out = Vec::new();
        for (i, slot) in self.inner.slots.iter().enumerate() {
            let res = match self.single_on(i, Request::EchoReq { data: data.clone() }, "ECHO_RES").await {
                Ok(Response::EchoRes { data }) => Ok(data),
                Ok(other) => Err(unexpected(&other)),
                Err(e) => Err(e),
            };
            out.push((slot.addr.clone(), res));
        }
        out
    }

    /// Sends OPTION_REQ to every reachable server (gearmand knows only
    /// `exceptions`); an unknown option is [`Error::Server`] `UNKNOWN_OPTION`.
    pub async fn set_option(&self, name: &str) -> Result<()> {
        let mut any = None;
        for i in 0..self.inner.slots.len() {
            match self
                .single_on(i, Request::OptionReq { name: Bytes::copy_from_slice(name.as_bytes()) }, "OPTION_RES")
                .await
            {
                Ok(_) => any = Some(Ok(())),
                Err(e) if moves_on(&e) => {
                    if any.is_none() {
                        any = Some(Err(e))
                    }
                }
                Err(e) => return Err(e),
            }
        }
        any.unwrap_or(Err(Error::NoServers))
    }

    // ---- internals -------------------------------------------------------

    /// The servers to try, in order: by unique id when given (so equal ids
    /// meet on the same server), else starting round-robin.
    fn order(&self, key: Option<&[u8]>) -> Vec<usize> {
        let n = self.inner.slots.len();
        let start = match key {
            Some(k) => {
                let mut h = DefaultHasher::new();
                k.hash(&mut h);
                (h.finish() % n as u64) as usize
            }
            None => self.inner.next.fetch_add(1, Ordering::Relaxed) % n,
        };
        (0..n).map(|i| (start + i) % n).collect()
    }

    async fn create(
        &self,
        job: &JobRequest,
        background: bool,
        events: Option<mpsc::UnboundedSender<JobEvent>>,
    ) -> Result<(JobHandle, usize)> {
        check_field("function name", &job.function)?;
        let unique = job.wire_unique(background || job.epoch.is_some());
        check_field("unique id", &unique)?;
        let request = match job.epoch {
            Some(epoch) => Request::SubmitJobEpoch {
                function: job.function.clone(),
                unique,
                epoch: Bytes::from(epoch.to_string()),
                data: job.payload.clone(),
            },
            None => Request::SubmitJob {
                mode: SubmitMode { priority: job.priority, background },
                function: job.function.clone(),
                unique,
                data: job.payload.clone(),
            },
        };
        let mut tried = Vec::new();
        for i in self.order(job.routing_key()) {
            let addr = &self.inner.slots[i].addr;
            match self.create_on(i, &request, events.clone()).await {
                Ok(h) => return Ok((h, i)),
                // The server is down or hung: the next one may take the job.
                Err(e) if moves_on(&e) => tried.push(format!("{addr}: {e}")),
                Err(e) => return Err(e),
            }
        }
        Err(Error::NoServerAvailable { tried: tried.join("; ") })
    }

    /// One submission to server `i`. A server that does not answer within
    /// the response timeout is marked failed and its connection closed, so
    /// that a late JOB_CREATED is never matched with a later request.
    async fn create_on(
        &self,
        i: usize,
        request: &Request,
        events: Option<mpsc::UnboundedSender<JobEvent>>,
    ) -> Result<JobHandle> {
        let sender = self.sender(i).await?;
        let (ctx, crx) = oneshot::channel();
        let cmd = Command { request: request.clone(), reply: Reply::Submit { created: ctx, events } };
        if !sender.send(cmd) {
            let e = sender.failure().unwrap_or_else(|| self.lost(i, "connection closed"));
            self.mark_failed(i, &sender, e.to_string()).await;
            return Err(e);
        }
        self.await_answer(i, &sender, crx, "JOB_CREATED").await
    }

    /// Waits for the answer to a request sent on `sender` (server `i`). On
    /// a timeout the server is marked failed: it is hung, and asking it
    /// again on every request would cost each of them the full timeout.
    async fn await_answer<T>(
        &self,
        i: usize,
        sender: &CommandSender,
        rx: oneshot::Receiver<Result<T>>,
        what: &'static str,
    ) -> Result<T> {
        let after = self.inner.options.response_timeout;
        match tokio::time::timeout(after, rx).await {
            Err(_) => {
                let e = Error::Timeout { what, after };
                self.mark_failed(i, sender, e.to_string()).await;
                Err(e)
            }
            Ok(Err(_)) => Err(sender.failure().unwrap_or_else(|| self.lost(i, "connection task ended"))),
            Ok(Ok(r)) => r,
        }
    }

    fn lost(&self, i: usize, message: &str) -> Error {
        Error::ConnectionLost { addr: self.inner.slots[i].addr.to_string(), message: message.into() }
    }

    /// The slot of a configured server.
    fn slot_of(&self, server: &ServerAddr) -> Option<usize> {
        self.inner.slots.iter().position(|s| &s.addr == server)
    }

    async fn single_on(&self, i: usize, request: Request, what: &'static str) -> Result<Response> {
        let sender = self.sender(i).await?;
        let (tx, rx) = oneshot::channel();
        if !sender.send(Command { request, reply: Reply::Single(tx) }) {
            return Err(sender.failure().unwrap_or_else(|| self.lost(i, "connection closed")));
        }
        self.await_answer(i, &sender, rx, what).await
    }

    /// The live connection to server `i`, connecting if needed. A server in
    /// its backoff period is refused without a network attempt.
    async fn sender(&self, i: usize) -> Result<CommandSender> {
        let slot = &self.inner.slots[i];
        let mut st = slot.state.lock().await;
        if let Some(s) = &st.sender {
            if !s.is_closed() {
                return Ok(s.clone());
            }
            // Closed while idle (server restarted, idle connection closed by
            // the peer): not a failed attempt, so reconnect at once. Backoff
            // is only for connection attempts that fail.
            st.sender = None;
        }
        if !st.backoff.ready(Instant::now()) {
            let why = st.backoff.last_error.clone().unwrap_or_default();
            return Err(Error::Connect { addr: slot.addr.to_string(), message: format!("backing off after: {why}") });
        }
        match self.open(&slot.addr).await {
            Ok(s) => {
                st.backoff.succeeded();
                st.sender = Some(s.clone());
                Ok(s)
            }
            Err(e) => {
                st.backoff.failed(Instant::now(), e.to_string());
                Err(e)
            }
        }
    }

    /// Closes the connection `failed` to server `i` and backs off from the
    /// server, unless a newer connection replaced it meanwhile (another
    /// request already reconnected: the server answers again).
    async fn mark_failed(&self, i: usize, failed: &CommandSender, why: String) {
        failed.close();
        let mut st = self.inner.slots[i].state.lock().await;
        if st.sender.as_ref().is_some_and(|s| s.same(failed)) {
            st.sender = None;
            st.backoff.failed(Instant::now(), why);
        }
    }

    async fn open(&self, addr: &ServerAddr) -> Result<CommandSender> {
        let opts = &self.inner.options;
        let (reader, writer) = conn::open(addr, opts.tls.as_ref(), opts.connect_timeout).await?;
        let sender = connection::spawn(reader, writer, addr.clone());
        if let Some(id) = &opts.client_id {
            let _ = sender.send(Command {
                request: Request::SetClientId { id: Bytes::from(id.clone()) },
                reply: Reply::NoAnswer,
            });
        }
        if opts.exceptions {
            let (tx, rx) = oneshot::channel();
            let _ = sender.send(Command {
                request: Request::OptionReq { name: Bytes::from_static(b"exceptions") },
                reply: Reply::Single(tx),
            });
            let ended = |sender: &CommandSender| {
                sender.failure().unwrap_or_else(|| Error::ConnectionLost {
                    addr: addr.to_string(),
                    message: "closed before answering OPTION_REQ".into(),
                })
            };
            match tokio::time::timeout(opts.response_timeout, rx).await {
                Ok(Ok(Ok(_))) => {}
                // The connection broke before the answer (a server that
                // requires a client certificate may refuse ours only after
                // a TLS 1.3 handshake, before its first answer): that
                // error is the one to report, not a refused option.
                Ok(Ok(Err(e))) if e.is_connection_error() => return Err(e),
                Ok(Ok(Err(e))) => tracing::warn!(server = %addr, error = %e, "server refused the exceptions option"),
                // The connection ended before the request was taken in.
                Ok(Err(_)) => return Err(ended(&sender)),
                Err(_) => {
                    // Hung server: don't leave the task waiting on it.
                    sender.close();
                    return Err(Error::Connect { addr: addr.to_string(), message: "no answer to OPTION_REQ".into() });
                }
            }
        }
        Ok(sender)
    }
}

/// True when another server may succeed where this error happened: the
/// server is unreachable, its connection broke, or it did not answer.
fn moves_on(e: &Error) -> bool {
    e.is_connection_error() || matches!(e, Error::Timeout { .. })
}

fn unexpected(r: &Response) -> Error {
    Error::Protocol(format!("unexpected {} answer", r.packet_type().name()))
}

/// Function names and unique ids are NUL-terminated on the wire.
fn check_field(what: &str, value: &[u8]) -> Result<()> {
    if value.contains(&0) {
        return Err(Error::InvalidArgument(format!("{what} contains a NUL byte")));
    }
    Ok(())
}

/// Keeps the answer worth returning from a round of status queries: the
/// first server that knows the job wins (returns true: stop asking);
/// otherwise the first answer, an `Ok` preferred over an error.
fn keep_answer<T>(kept: &mut Option<Result<T>>, res: Result<T>, known: impl Fn(&T) -> bool) -> bool {
    let is_known = matches!(&res, Ok(s) if known(s));
    if is_known || kept.is_none() || matches!(kept, Some(Err(_))) {
        *kept = Some(res);
    }
    is_known
}
