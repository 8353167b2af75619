//! `submit-bg`: C connections submit background jobs with no worker
//! attached; measures JOB_CREATED per second and submit latency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;

use super::roles::{connect_many, submit_background};
use super::{histogram, join_all, Ctx, Tickets};
use crate::conn::Conn;
use crate::progress::Progress;
use crate::report::{Latency, Report};

/// Totals of a group of background submitters.
pub struct SubmitTotals {
    pub elapsed: Duration,
    pub created: u64,
    pub status_queries: u64,
    pub latency: Histogram<u64>,
}

/// Runs one background submitter per connection until `tickets` run out.
pub async fn submit_all(
    ctx: &Arc<Ctx>,
    conns: Vec<Conn>,
    tickets: Arc<Tickets>,
    function: Bytes,
    status_every: Option<u64>,
) -> anyhow::Result<SubmitTotals> {
    let start = Instant::now();
    let tasks = conns
        .into_iter()
        .map(|conn| tokio::spawn(submit_background(ctx.clone(), conn, tickets.clone(), function.clone(), status_every)))
        .collect();
    let outs = join_all(tasks).await?;
    let elapsed = start.elapsed();
    let mut totals = SubmitTotals { elapsed, created: 0, status_queries: 0, latency: histogram() };
    for o in outs {
        totals.created += o.created;
        totals.status_queries += o.status_queries;
        let _ = totals.latency.add(&o.latency);
    }
    Ok(totals)
}

/// The `submit-bg` mode.
pub async fn run(ctx: Arc<Ctx>) -> anyhow::Result<Report> {
    let a = &ctx.args;
    let conns = connect_many(&ctx.target, a.connections).await?;
    let tickets = Arc::new(Tickets::new(a.jobs, a.duration));
    let mut progress = Progress::start("submit-bg", a.jobs, ctx.done.clone(), a.quiet);
    let t = submit_all(&ctx, conns, tickets, ctx.function("bg"), None).await?;
    progress.finish();
    let latency = Latency::from_histogram("submit to JOB_CREATED", &t.latency);
    Ok(ctx.report(t.elapsed, t.created, latency))
}
