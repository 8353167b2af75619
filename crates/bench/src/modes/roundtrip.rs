//! `roundtrip`: C clients each loop submit-and-wait on foreground jobs
//! that W workers echo back; jobs/s and round-trip latency.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

use super::roles::{connect_many, connect_worker, foreground_client, worker, Finish};
use super::{histogram, join_all, Ctx, Tickets};
use crate::progress::Progress;
use crate::report::{Latency, Report};

/// The `roundtrip` mode.
pub async fn run(ctx: Arc<Ctx>) -> anyhow::Result<Report> {
    let a = &ctx.args;
    let function = ctx.function("echo");
    let mut workers = Vec::with_capacity(a.workers);
    for _ in 0..a.workers {
        workers.push(connect_worker(&ctx, std::slice::from_ref(&function)).await?);
    }
    let clients = connect_many(&ctx.target, a.connections).await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let completed = Arc::new(AtomicU64::new(0));
    let worker_tasks: Vec<_> = workers
        .into_iter()
        .map(|conn| tokio::spawn(worker(ctx.clone(), conn, Finish::Echo, completed.clone(), None, stop_rx.clone())))
        .collect();

    let tickets = Arc::new(Tickets::new(a.jobs, a.duration));
    let mut progress = Progress::start("roundtrip", a.jobs, ctx.done.clone(), a.quiet);
    let start = Instant::now();
    let client_tasks = clients
        .into_iter()
        .map(|conn| tokio::spawn(foreground_client(ctx.clone(), conn, tickets.clone(), function.clone())))
        .collect();
    let outs = join_all(client_tasks).await;
    let elapsed = start.elapsed();
    let _ = stop_tx.send(true);
    let workers_result = join_all(worker_tasks).await;
    progress.finish();
    let outs = outs?;
    workers_result?;

    let mut latency = histogram();
    let mut done = 0;
    for o in outs {
        done += o.completed;
        let _ = latency.add(&o.latency);
    }
    Ok(ctx.report(elapsed, done, Latency::from_histogram("submit to WORK_COMPLETE", &latency)))
}
