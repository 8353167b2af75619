//! `drain`: N background jobs are queued first (not timed), then W
//! workers take them with GRAB_JOB / PRE_SLEEP and complete each one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{watch, Notify};

use super::roles::{connect_many, connect_worker, worker, Finish};
use super::submit_bg::submit_all;
use super::{join_all, Ctx, Tickets};
use crate::progress::Progress;
use crate::report::Report;

/// The `drain` mode.
pub async fn run(ctx: Arc<Ctx>) -> anyhow::Result<Report> {
    let a = &ctx.args;
    let function = ctx.function("q");

    // Phase 1: fill the queue.
    let conns = connect_many(&ctx.target, a.connections).await?;
    let mut progress = Progress::start("pre-fill", a.jobs, ctx.done.clone(), a.quiet);
    let fill =
        submit_all(&ctx, conns, Arc::new(Tickets::new(a.jobs, a.prefill_duration)), function.clone(), None).await?;
    progress.finish();
    let queued = fill.created;
    anyhow::ensure!(queued > 0, "the server accepted none of the {} pre-fill jobs", a.jobs);

    // Phase 2: drain it.
    ctx.done.store(0, Ordering::Relaxed);
    let mut workers = Vec::with_capacity(a.workers);
    for _ in 0..a.workers {
        workers.push(connect_worker(&ctx, std::slice::from_ref(&function)).await?);
    }
    let completed = Arc::new(AtomicU64::new(0));
    let all_done = Arc::new(Notify::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut progress = Progress::start("drain", queued, ctx.done.clone(), a.quiet);
    let start = Instant::now();
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|conn| {
            let target = Some((queued, all_done.clone()));
            tokio::spawn(worker(ctx.clone(), conn, Finish::Empty, completed.clone(), target, stop_rx.clone()))
        })
        .collect();
    match a.duration {
        Some(d) => {
            let _ = tokio::time::timeout(d, all_done.notified()).await;
        }
        None => all_done.notified().await,
    }
    let elapsed = start.elapsed();
    let done = completed.load(Ordering::Relaxed);
    let _ = stop_tx.send(true);
    join_all(tasks).await?;
    progress.finish();

    let mut report = ctx.report(elapsed, done, None);
    report.details.insert("prefill_jobs".into(), queued as f64);
    report.details.insert("prefill_s".into(), fill.elapsed.as_secs_f64());
    report.details.insert("prefill_jobs_per_s".into(), (queued as f64 / fill.elapsed.as_secs_f64().max(1e-9)).round());
    Ok(report)
}
