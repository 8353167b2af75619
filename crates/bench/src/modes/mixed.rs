//! `mixed`: background submitters (asking GET_STATUS on every 4th handle)
//! and foreground round-trip clients at once, W workers serving both
//! functions. Half the connections (at least one) submit in the
//! background, the rest (at least one) in the foreground.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

use super::roles::{connect_many, connect_worker, foreground_client, worker, Finish};
use super::submit_bg::submit_all;
use super::{histogram, join_all, Ctx, Tickets};
use crate::progress::Progress;
use crate::report::{Latency, Report};

/// GET_STATUS is asked for every this-many background handles.
const STATUS_EVERY: u64 = 4;

/// The `mixed` mode.
pub async fn run(ctx: Arc<Ctx>) -> anyhow::Result<Report> {
    let a = &ctx.args;
    let bg_fn = ctx.function("bg");
    let fg_fn = ctx.function("fg");
    let n_bg = (a.connections / 2).max(1);
    let n_fg = (a.connections - a.connections / 2).max(1);

    let mut workers = Vec::with_capacity(a.workers);
    for _ in 0..a.workers {
        workers.push(connect_worker(&ctx, &[bg_fn.clone(), fg_fn.clone()]).await?);
    }
    let bg_conns = connect_many(&ctx.target, n_bg).await?;
    let fg_conns = connect_many(&ctx.target, n_fg).await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let worked = Arc::new(AtomicU64::new(0));
    let worker_tasks: Vec<_> = workers
        .into_iter()
        .map(|conn| tokio::spawn(worker(ctx.clone(), conn, Finish::Echo, worked.clone(), None, stop_rx.clone())))
        .collect();

    // One ticket pool: N counts background and foreground jobs together.
    let tickets = Arc::new(Tickets::new(a.jobs, a.duration));
    let mut progress = Progress::start("mixed", a.jobs, ctx.done.clone(), a.quiet);
    let start = Instant::now();
    let fg_tasks = fg_conns
        .into_iter()
        .map(|conn| tokio::spawn(foreground_client(ctx.clone(), conn, tickets.clone(), fg_fn.clone())))
        .collect();
    let bg = {
        let ctx = ctx.clone();
        let tickets = tickets.clone();
        tokio::spawn(async move { submit_all(&ctx, bg_conns, tickets, bg_fn, Some(STATUS_EVERY)).await })
    };
    let fg = join_all(fg_tasks).await;
    // Foreground clients finish only when the tickets are gone; make sure
    // the background side stops too if the foreground failed early.
    tickets.stop();
    let bg = bg.await.map_err(|e| anyhow::anyhow!("background submitters failed: {e}"))?;
    let elapsed = start.elapsed();
    let _ = stop_tx.send(true);
    let workers_result = join_all(worker_tasks).await;
    progress.finish();
    let fg = fg?;
    let bg = bg?;
    workers_result?;

    let mut latency = histogram();
    let mut fg_done = 0;
    for o in fg {
        fg_done += o.completed;
        let _ = latency.add(&o.latency);
    }
    let mut report = ctx.report(
        elapsed,
        bg.created + fg_done,
        Latency::from_histogram("foreground submit to WORK_COMPLETE", &latency),
    );
    let secs = elapsed.as_secs_f64().max(1e-9);
    report.details.insert("background_connections".into(), n_bg as f64);
    report.details.insert("foreground_connections".into(), n_fg as f64);
    report.details.insert("background_jobs".into(), bg.created as f64);
    report.details.insert("foreground_jobs".into(), fg_done as f64);
    report.details.insert("status_queries".into(), bg.status_queries as f64);
    report.details.insert("jobs_run_by_workers".into(), worked.load(std::sync::atomic::Ordering::Relaxed) as f64);
    report.details.insert("ops_per_s".into(), ((bg.created + fg_done + bg.status_queries) as f64 / secs).round());
    Ok(report)
}
