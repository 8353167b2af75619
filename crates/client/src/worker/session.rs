//! One worker connection: register, then GRAB / PRE_SLEEP / NOOP until stopped.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;

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
    let (reader, mut writer) = match conn::open(addr, shared.options.connect_timeout).await {
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

async fn serve_loop(
    shared: &Arc<Shared>,
    addr: &ServerAddr,
    mut reader: PacketReader,
    out: &mpsc::UnboundedSender<Request>,
    mut stop: watch::Receiver<bool>,
    jobs: &mut JoinSet<()>,
) -> Result<()> {
    let closed = || Error::ConnectionLost { addr: addr.to_string(), message: "writer ended".into() };
    loop {
        while jobs.try_join_next().is_some() {}
        if *stop.borrow() {
            return Ok(());
        }
        if shared.quota_taken() {
            // Wait for the last jobs to finish; job_finished() raises stop.
            tokio::select! {
                _ = stop.changed() => continue,
                r = reader.read() => { ignore_stray(r?); continue; }
            }
        }
        let permit = tokio::select! {
            p = shared.permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return Ok(()),
            },
            _ = stop.changed() => continue,
            r = reader.read() => { ignore_stray(r?); continue; }
        };
        out.send(Request::GrabJobUniq).map_err(|_| closed())?;
        let after = shared.options.response_timeout;
        let assignment = loop {
            let next = tokio::time::timeout(after, reader.read())
                .await
                .map_err(|_| Error::Timeout { what: "the answer to GRAB_JOB_UNIQ", after })??;
            match next {
                Response::JobAssignUniq { handle, function, unique, data }
                | Response::JobAssignAll { handle, function, unique, data, .. } => {
                    break Some(Assignment { handle, function, unique, data })
                }
                Response::JobAssign { handle, function, data } => {
                    break Some(Assignment { handle, function, unique: Bytes::new(), data })
                }
                Response::NoJob => break None,
                other => ignore_stray(other),
            }
        };
        match assignment {
            Some(a) => {
                shared.started.fetch_add(1, Ordering::SeqCst);
                jobs.spawn(run_job(shared.clone(), a, permit, out.clone(), addr.to_string()));
            }
            None => {
                drop(permit);
                out.send(Request::PreSleep).map_err(|_| closed())?;
                loop {
                    tokio::select! {
                        r = reader.read() => match r? {
                            Response::Noop => break,
                            other => ignore_stray(other),
                        },
                        _ = stop.changed() => break,
                    }
                }
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
