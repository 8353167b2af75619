//! One worker connection: register, then GRAB / PRE_SLEEP / NOOP until stopped.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt;
use sprocket_proto::{Request, Response};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};
use tokio::task::JoinSet;

use super::{Job, JobError, Shared};
use crate::addr::ServerAddr;
use crate::conn::{self, PacketReader};
use crate::error::{Error, Result};

struct Assignment {
    handle: Bytes,
    function: Bytes,
    unique: Bytes,
    data: Bytes,
}

/// Runs one session. Returns whether the connection was made, and `Ok`
/// when it ended because of a stop request.
pub(super) async fn run(shared: &Arc<Shared>, addr: &ServerAddr, stop: watch::Receiver<bool>) -> (bool, Result<()>) {
    let (reader, mut writer) = match conn::open(addr, shared.options.tls.as_ref(), shared.options.connect_timeout).await
    {
        Ok(c) => c,
        Err(e) => return (false, Err(e)),
    };
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Request>();
    // The writer drains everything handlers and the loop send, in order,
    // coalescing what is already queued into one write.
    let writer_task = tokio::spawn(async move {
        while let Some(req) = out_rx.recv().await {
            writer.queue(&req);
            while let Ok(more) = out_rx.try_recv() {
                writer.queue(&more);
            }
            if let Err(e) = writer.flush().await {
                tracing::debug!(error = %e, "worker write failed");
                return;
            }
        }
    });
    if let Some(id) = &shared.options.client_id {
        let _ = out_tx.send(Request::SetClientId { id: Bytes::from(id.clone()) });
    }
    for f in &shared.order {
        let req = match f.timeout {
            Some(t) => Request::CanDoTimeout {
                function: f.name.clone(),
                timeout: Bytes::from(t.as_millis().max(1).to_string()),
            },
            None => Request::CanDo { function: f.name.clone() },
        };
        let _ = out_tx.send(req);
    }
    let mut jobs = JoinSet::new();
    let res = serve_loop(shared, addr, reader, &out_tx, stop, &mut jobs).await;
    if res.is_ok() {
        // Graceful stop: let running jobs finish and report.
        while jobs.join_next().await.is_some() {}
    } else {
        // The server has requeued our jobs already; their results would be refused.
        jobs.abort_all();
        while jobs.join_next().await.is_some() {}
    }
    drop(out_tx);
    let _ = writer_task.await;
    (true, res)
}

/// What ended an idle wait.
enum Woke<T> {
    /// The awaited future finished.
    Got(T),
    /// A stop was requested.
    Stop,
    /// The server sent a packet.
    Packet(Response),
}

/// Checks that a server we wait on still answers. TCP alone may take hours
/// to notice a server host that lost power, or a proxy that dropped the
/// server side of the connection: after `every` without hearing anything an
/// ECHO_REQ is sent, and no packet within `limit` means the connection is
/// dead and is reopened.
struct Probe {
    every: Duration,
    limit: Duration,
    next: Instant,
    asked: bool,
}

impl Probe {
    fn new(every: Duration, limit: Duration) -> Probe {
        // A zero interval would send ECHO_REQ in a loop.
        let every = every.max(Duration::from_millis(10));
        Probe { every, limit, next: Instant::now() + every, asked: false }
    }

    /// Any packet shows the server is alive.
    fn heard(&mut self) {
        self.asked = false;
        self.next = Instant::now() + self.every;
    }

    /// Called at `self.next`: the question to send, or an error when the
    /// last one went unanswered.
    fn fire(&mut self) -> Result<Request> {
        if self.asked {
            return Err(Error::Timeout { what: "the answer to an idle check (ECHO_REQ)", after: self.limit });
        }
        self.asked = true;
        self.next = Instant::now() + self.limit;
        Ok(Request::EchoReq { data: Bytes::from_static(b"idle-check") })
    }
}

/// The loop of one connection: its reader, its outgoing queue, its probe.
struct Session<'a> {
    shared: &'a Arc<Shared>,
    addr: &'a ServerAddr,
    reader: PacketReader,
    out: &'a mpsc::UnboundedSender<Request>,
    probe: Probe,
}

async fn serve_loop(
    shared: &Arc<Shared>,
    addr: &ServerAddr,
    reader: PacketReader,
    out: &mpsc::UnboundedSender<Request>,
    mut stop: watch::Receiver<bool>,
    jobs: &mut JoinSet<()>,
) -> Result<()> {
    let probe = Probe::new(shared.options.idle_check, shared.options.response_timeout);
    let mut s = Session { shared, addr, reader, out, probe };
    loop {
        while jobs.try_join_next().is_some() {}
        if *stop.borrow() {
            return Ok(());
        }
        // Always a free slot first, then a run of max_jobs: the same order in
        // every session, so two sessions never hold one each and wait.
        let permit = match s.idle_wait(shared.permits.clone().acquire_owned(), &mut stop).await? {
            Woke::Got(Ok(p)) => p,
            Woke::Got(Err(_)) => return Ok(()),
            Woke::Stop => continue,
            Woke::Packet(p) => {
                ignore_stray(p);
                continue;
            }
        };
        // With max_jobs spent this waits until the last jobs finish and
        // job_finished() raises stop.
        let run = match s.idle_wait(shared.reserve(), &mut stop).await? {
            Woke::Got(Some(r)) => r,
            Woke::Got(None) => return Ok(()),
            Woke::Stop => continue,
            Woke::Packet(p) => {
                ignore_stray(p);
                continue;
            }
        };
        match s.grab().await? {
            Some(a) => {
                run.spend();
                jobs.spawn(run_job(shared.clone(), a, permit, out.clone(), addr.to_string()));
            }
            None => {
                drop((run, permit));
                s.sleep(&mut stop).await?;
            }
        }
    }
}

impl Session<'_> {
    fn send(&self, req: Request) -> Result<()> {
        self.out
            .send(req)
            .map_err(|_| Error::ConnectionLost { addr: self.addr.to_string(), message: "writer ended".into() })
    }

    /// Reads the next packet; hearing anything resets the idle check.
    async fn read(&mut self) -> Result<Response> {
        let r = self.reader.read().await?;
        self.probe.heard();
        Ok(r)
    }

    /// Waits for `want`, a stop request or a packet, probing the connection
    /// meanwhile so that no wait on a dead server lasts forever.
    async fn idle_wait<T>(
        &mut self,
        want: impl std::future::Future<Output = T>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Woke<T>> {
        tokio::pin!(want);
        loop {
            let due = tokio::time::Instant::from_std(self.probe.next);
            tokio::select! {
                v = &mut want => return Ok(Woke::Got(v)),
                _ = stop.changed() => return Ok(Woke::Stop),
                r = self.read() => return Ok(Woke::Packet(r?)),
                _ = tokio::time::sleep_until(due) => {
                    let echo = self.probe.fire()?;
                    self.send(echo)?;
                }
            }
        }
    }

    /// Asks for a job; `None` when the server has none.
    async fn grab(&mut self) -> Result<Option<Assignment>> {
        self.send(Request::GrabJobUniq)?;
        let after = self.shared.options.response_timeout;
        loop {
            let next = tokio::time::timeout(after, self.read())
                .await
                .map_err(|_| Error::Timeout { what: "the answer to GRAB_JOB_UNIQ", after })??;
            match next {
                Response::JobAssignUniq { handle, function, unique, data }
                | Response::JobAssignAll { handle, function, unique, data, .. } => {
                    return Ok(Some(Assignment { handle, function, unique, data }))
                }
                Response::JobAssign { handle, function, data } => {
                    return Ok(Some(Assignment { handle, function, unique: Bytes::new(), data }))
                }
                Response::NoJob => return Ok(None),
                other => ignore_stray(other),
            }
        }
    }

    /// PRE_SLEEP, then waits for the NOOP that says work arrived (or a stop).
    async fn sleep(&mut self, stop: &mut watch::Receiver<bool>) -> Result<()> {
        self.send(Request::PreSleep)?;
        loop {
            match self.idle_wait(std::future::pending::<std::convert::Infallible>(), stop).await? {
                Woke::Packet(Response::Noop) | Woke::Stop => return Ok(()),
                Woke::Packet(other) => ignore_stray(other),
                Woke::Got(never) => match never {},
            }
        }
    }
}

/// Packets a worker can get out of turn: NOOPs, and ERROR answers to
/// results the server no longer wanted (e.g. after a CAN_DO_TIMEOUT).
fn ignore_stray(resp: Response) {
    match resp {
        Response::Noop => {}
        Response::Error { code, text } => tracing::warn!(
            code = %String::from_utf8_lossy(&code),
            text = %String::from_utf8_lossy(&text),
            "server error on worker connection"
        ),
        other => tracing::debug!(packet = other.packet_type().name(), "ignored packet on worker connection"),
    }
}

async fn run_job(
    shared: Arc<Shared>,
    a: Assignment,
    permit: OwnedSemaphorePermit,
    out: mpsc::UnboundedSender<Request>,
    server: String,
) {
    let handle = a.handle.clone();
    let result = match shared.functions.get(&a.function) {
        None => {
            tracing::warn!(function = %String::from_utf8_lossy(&a.function), "job for a function we did not register");
            Err(JobError::Fail)
        }
        Some(f) => {
            let job = Job {
                handle: a.handle,
                function: a.function,
                unique: a.unique,
                payload: a.data,
                out: out.clone(),
                server,
            };
            call_handler(&f.handler, job).await.unwrap_or_else(|_| {
                tracing::error!(handle = %String::from_utf8_lossy(&handle), "job handler panicked");
                Err(JobError::Fail)
            })
        }
    };
    let reply = match result {
        Ok(data) => Request::WorkComplete { handle, data },
        Err(JobError::Fail) => Request::WorkFail { handle },
        Err(JobError::Exception(data)) => Request::WorkException { handle, data },
    };
    let _ = out.send(reply);
    drop(permit);
    shared.job_finished();
}

/// Runs a handler, catching a panic both while it builds its future (a
/// plain closure doing work before its `async` block) and while the future
/// runs; `Err` means it panicked. Without the first, such a panic killed the
/// job's task before any answer was sent and the caller waited forever.
async fn call_handler(
    handler: &super::Handler,
    job: Job,
) -> std::result::Result<std::result::Result<Bytes, JobError>, ()> {
    let fut = std::panic::catch_unwind(AssertUnwindSafe(|| handler(job))).map_err(|_| ())?;
    AssertUnwindSafe(fut).catch_unwind().await.map_err(|_| ())
}
