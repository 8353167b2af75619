//! The three kinds of connection the modes combine: a pipelining
//! background submitter, a worker that echoes jobs back, and a foreground
//! client that submits and waits.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use bytes::Bytes;
use hdrhistogram::Histogram;
use sprocket_proto::{Request, Response, SubmitMode};
use tokio::sync::{watch, Notify};

use super::{histogram, record, Ctx, Tickets};
use crate::conn::{Conn, Target};

/// What a background submitter did.
pub struct SubmitterOutcome {
    pub created: u64,
    pub status_queries: u64,
    /// Submit to JOB_CREATED.
    pub latency: Histogram<u64>,
}

/// What a request in flight on a submitter connection waits for.
enum Pending {
    Submit(Instant),
    Status,
}

/// Submits background jobs on `conn`, keeping `--window` in flight, until
/// the tickets run out. With `status_every = k`, also asks GET_STATUS for
/// every k-th handle it is given.
pub async fn submit_background(
    ctx: Arc<Ctx>,
    mut conn: Conn,
    tickets: Arc<Tickets>,
    function: Bytes,
    status_every: Option<u64>,
) -> anyhow::Result<SubmitterOutcome> {
    let mode = SubmitMode { priority: ctx.args.priority.priority(), background: true };
    let window = ctx.args.window;
    let mut pending: VecDeque<Pending> = VecDeque::with_capacity(window + 1);
    let mut out = SubmitterOutcome { created: 0, status_queries: 0, latency: histogram() };
    let mut exhausted = false;
    loop {
        while !exhausted && pending.len() < window {
            let Some(t) = tickets.claim() else {
                exhausted = true;
                break;
            };
            conn.queue(&Request::SubmitJob {
                mode,
                function: function.clone(),
                unique: ctx.unique(t),
                data: ctx.payload.clone(),
            });
            pending.push_back(Pending::Submit(Instant::now()));
        }
        if pending.is_empty() {
            return Ok(out);
        }
        conn.flush().await?;
        let mut reply = Some(conn.next().await?);
        while let Some(r) = reply {
            let Some(p) = pending.pop_front() else { bail!("unexpected {:?} from server", r.packet_type()) };
            match (p, r) {
                (Pending::Submit(sent), Response::JobCreated { handle }) => {
                    record(&mut out.latency, sent.elapsed());
                    out.created += 1;
                    ctx.done.fetch_add(1, Ordering::Relaxed);
                    if status_every.is_some_and(|k| out.created.is_multiple_of(k)) {
                        conn.queue(&Request::GetStatus { handle });
                        pending.push_back(Pending::Status);
                    }
                }
                (Pending::Submit(_), Response::Error { code, text }) => {
                    note_error(&ctx, &code, &text);
                }
                (Pending::Status, Response::StatusRes { .. }) => out.status_queries += 1,
                (_, other) => bail!("unexpected {:?} reply to a background submit", other.packet_type()),
            }
            reply = conn.try_next()?;
        }
    }
}

/// Counts an ERROR packet; the first few are also printed to stderr.
fn note_error(ctx: &Ctx, code: &[u8], text: &[u8]) {
    let n = ctx.errors.fetch_add(1, Ordering::Relaxed);
    if n < 3 {
        eprintln!("server ERROR {}: {}", String::from_utf8_lossy(code), String::from_utf8_lossy(text));
    }
}

/// Connects a worker and registers `functions`; returns once the server
/// has processed the registrations (an ECHO round trip), so the measured
/// phase never waits for them.
pub async fn connect_worker(ctx: &Ctx, functions: &[Bytes]) -> anyhow::Result<Conn> {
    let mut conn = Conn::connect(&ctx.target).await?;
    for f in functions {
        conn.queue(&Request::CanDo { function: f.clone() });
    }
    match conn.call(&Request::EchoReq { data: Bytes::from_static(b"ready") }).await? {
        Response::EchoRes { .. } => Ok(conn),
        other => bail!("worker registration answered with {:?}", other.packet_type()),
    }
}

/// How a worker finishes the jobs it takes.
#[derive(Clone, Copy)]
pub enum Finish {
    /// WORK_COMPLETE with the job's own data (foreground round trips).
    Echo,
    /// WORK_COMPLETE with no data (background jobs nobody waits for).
    Empty,
}

/// Takes jobs with GRAB_JOB, completes each at once, and sleeps with
/// PRE_SLEEP when the queue is empty, until `stop` turns true. Every
/// completion increments `completed`; reaching `target` wakes `reached`.
pub async fn worker(
    ctx: Arc<Ctx>,
    mut conn: Conn,
    finish: Finish,
    completed: Arc<AtomicU64>,
    target: Option<(u64, Arc<Notify>)>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<u64> {
    let mut mine = 0u64;
    conn.queue(&Request::GrabJob);
    conn.flush().await?;
    loop {
        if *stop.borrow() {
            return Ok(mine);
        }
        let reply = tokio::select! {
            r = conn.next() => r?,
            _ = stop.changed() => return Ok(mine),
        };
        match reply {
            Response::JobAssign { handle, data, .. }
            | Response::JobAssignUniq { handle, data, .. }
            | Response::JobAssignAll { handle, data, .. } => {
                let data = match finish {
                    Finish::Echo => data,
                    Finish::Empty => Bytes::new(),
                };
                conn.queue(&Request::WorkComplete { handle, data });
                conn.queue(&Request::GrabJob);
                conn.flush().await?;
                mine += 1;
                ctx.done.fetch_add(1, Ordering::Relaxed);
                let total = completed.fetch_add(1, Ordering::Relaxed) + 1;
                if let Some((n, notify)) = &target {
                    if total == *n {
                        notify.notify_one();
                    }
                }
            }
            Response::NoJob => {
                conn.queue(&Request::PreSleep);
                conn.flush().await?;
            }
            Response::Noop => {
                conn.queue(&Request::GrabJob);
                conn.flush().await?;
            }
            Response::Error { code, text } => note_error(&ctx, &code, &text),
            other => bail!("worker got unexpected {:?}", other.packet_type()),
        }
    }
}

/// What a foreground client did.
pub struct ClientOutcome {
    pub completed: u64,
    /// Submit to WORK_COMPLETE.
    pub latency: Histogram<u64>,
}

/// Loops: submit a foreground job, wait for its result, until the tickets
/// run out.
pub async fn foreground_client(
    ctx: Arc<Ctx>,
    mut conn: Conn,
    tickets: Arc<Tickets>,
    function: Bytes,
) -> anyhow::Result<ClientOutcome> {
    let mode = SubmitMode { priority: ctx.args.priority.priority(), background: false };
    let mut out = ClientOutcome { completed: 0, latency: histogram() };
    while let Some(t) = tickets.claim() {
        let sent = Instant::now();
        conn.queue(&Request::SubmitJob {
            mode,
            function: function.clone(),
            unique: ctx.unique(t),
            data: ctx.payload.clone(),
        });
        conn.flush().await?;
        loop {
            match conn.next().await? {
                Response::JobCreated { .. }
                | Response::WorkData { .. }
                | Response::WorkWarning { .. }
                | Response::WorkStatus { .. } => continue,
                Response::WorkComplete { data, .. } => {
                    if data.len() != ctx.payload.len() {
                        bail!("worker echo came back with {} bytes instead of {}", data.len(), ctx.payload.len());
                    }
                    record(&mut out.latency, sent.elapsed());
                    out.completed += 1;
                    ctx.done.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Response::WorkFail { .. } | Response::WorkException { .. } => {
                    ctx.errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Response::Error { code, text } => {
                    note_error(&ctx, &code, &text);
                    break;
                }
                other => bail!("client got unexpected {:?}", other.packet_type()),
            }
        }
    }
    Ok(out)
}

/// Connects `n` plain connections, at most [`CONNECT_CONCURRENCY`] at a
/// time: gearmand listens with a backlog of 32, and overflowing it costs a
/// one-second SYN retry per dropped connection.
pub async fn connect_many(target: &Target, n: usize) -> anyhow::Result<Vec<Conn>> {
    let mut conns = Vec::with_capacity(n);
    let mut set = tokio::task::JoinSet::new();
    let mut started = 0;
    while conns.len() < n {
        while started < n && set.len() < CONNECT_CONCURRENCY {
            let target = target.clone();
            set.spawn(async move { Conn::connect(&target).await });
            started += 1;
        }
        match set.join_next().await {
            Some(r) => conns.push(r.map_err(|e| anyhow::anyhow!("connect task failed: {e}"))??),
            None => break,
        }
    }
    Ok(conns)
}

/// Connection attempts in flight at once.
pub const CONNECT_CONCURRENCY: usize = 16;
