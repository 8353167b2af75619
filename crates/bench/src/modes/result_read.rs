//! `result-read`: reading the results of ended background jobs through the
//! reserved function `sprocket.result` (a Sprocket server only). First,
//! untimed, `--prefill` background jobs are submitted and W workers
//! complete them; then C clients each loop a foreground submission of
//! `sprocket.result` with one of those handles and wait for the replayed
//! WORK_COMPLETE; reads/s and read latency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use sprocket_proto::{Request, Response, SubmitMode};
use tokio::sync::watch;

use super::roles::{connect_many, connect_worker, worker, Finish};
use super::{histogram, join_all, record, Ctx, Tickets};
use crate::conn::Conn;
use crate::progress::Progress;
use crate::report::{Latency, Report};

/// The reserved function that replays a job's record.
const RESULT_FUNCTION: &[u8] = b"sprocket.result";

/// The `result-read` mode.
pub async fn run(ctx: Arc<Ctx>) -> anyhow::Result<Report> {
    let a = &ctx.args;
    let handles = Arc::new(prefill(&ctx).await?);
    let clients = connect_many(&ctx.target, a.connections).await?;
    let tickets = Arc::new(Tickets::new(a.jobs, a.duration));
    let mut progress = Progress::start("result-read", a.jobs, ctx.done.clone(), a.quiet);
    let start = Instant::now();
    let tasks = clients
        .into_iter()
        .map(|conn| tokio::spawn(reader(ctx.clone(), conn, tickets.clone(), handles.clone())))
        .collect();
    let outs = join_all(tasks).await;
    let elapsed = start.elapsed();
    progress.finish();
    let mut latency = histogram();
    let mut done = 0;
    for (completed, h) in outs? {
        done += completed;
        let _ = latency.add(&h);
    }
    Ok(ctx.report(elapsed, done, Latency::from_histogram("sprocket.result to WORK_COMPLETE", &latency)))
}

/// Submits `--prefill` background jobs (at least 1), lets the workers
/// complete them all, and returns their handles.
async fn prefill(ctx: &Arc<Ctx>) -> anyhow::Result<Vec<Bytes>> {
    let a = &ctx.args;
    let n = a.prefill.max(1);
    let function = ctx.function("echo");
    let mut submitter = Conn::connect(&ctx.target).await?;
    let mode = SubmitMode { priority: a.priority.priority(), background: true };
    let mut handles = Vec::with_capacity(n as usize);
    for t in 0..n {
        let req =
            Request::SubmitJob { mode, function: function.clone(), unique: ctx.unique(t), data: ctx.payload.clone() };
        match submitter.call(&req).await? {
            Response::JobCreated { handle } => handles.push(handle),
            other => bail!("background submit answered {:?}", other.packet_type()),
        }
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let completed = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..a.workers.max(1) {
        let conn = connect_worker(ctx, std::slice::from_ref(&function)).await?;
        workers.push(tokio::spawn(worker(ctx.clone(), conn, Finish::Echo, completed.clone(), None, stop_rx.clone())));
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while completed.load(Ordering::Relaxed) < n {
        if Instant::now() > deadline {
            bail!("the workers completed {} of {n} prefill jobs in 10 minutes", completed.load(Ordering::Relaxed));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop_tx.send(true);
    join_all(workers).await.context("prefill workers")?;
    ctx.done.store(0, Ordering::Relaxed);
    Ok(handles)
}

/// One reader: reads results of the prefilled jobs, round robin from its
/// first ticket, until the tickets run out.
async fn reader(
    ctx: Arc<Ctx>,
    mut conn: Conn,
    tickets: Arc<Tickets>,
    handles: Arc<Vec<Bytes>>,
) -> anyhow::Result<(u64, hdrhistogram::Histogram<u64>)> {
    let mode = SubmitMode { priority: ctx.args.priority.priority(), background: false };
    let mut latency = histogram();
    let mut completed = 0;
    while let Some(t) = tickets.claim() {
        let handle = handles[(t % handles.len() as u64) as usize].clone();
        let sent = Instant::now();
        conn.queue(&Request::SubmitJob {
            mode,
            function: Bytes::from_static(RESULT_FUNCTION),
            unique: Bytes::new(),
            data: handle,
        });
        conn.flush().await?;
        loop {
            match conn.next().await? {
                Response::JobCreated { .. } | Response::WorkData { .. } | Response::WorkStatus { .. } => continue,
                Response::WorkComplete { data, .. } => {
                    if data.len() != ctx.payload.len() {
                        bail!("a replayed result has {} bytes instead of {}", data.len(), ctx.payload.len());
                    }
                    record(&mut latency, sent.elapsed());
                    completed += 1;
                    ctx.done.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Response::WorkFail { .. } | Response::WorkException { .. } => {
                    bail!("sprocket.result failed: is this a Sprocket server keeping records (--records)?")
                }
                Response::Error { code, text } => {
                    bail!("server ERROR {}: {}", String::from_utf8_lossy(&code), String::from_utf8_lossy(&text))
                }
                other => bail!("reader got unexpected {:?}", other.packet_type()),
            }
        }
    }
    Ok((completed, latency))
}
