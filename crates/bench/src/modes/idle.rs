//! `idle`: opens C connections, checks each answers ECHO, and holds them
//! open for --duration (default 1 s), so a script can read the server's
//! memory with that many idle clients.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use sprocket_proto::{Request, Response};

use super::roles::connect_many;
use super::Ctx;
use crate::report::Report;

/// The `idle` mode.
pub async fn run(ctx: Arc<Ctx>) -> anyhow::Result<Report> {
    let a = &ctx.args;
    let start = Instant::now();
    let mut conns = connect_many(&ctx.target, a.connections).await?;
    let ping = Request::EchoReq { data: Bytes::from_static(b"idle") };
    for c in conns.iter_mut() {
        c.queue(&ping);
        c.flush().await?;
    }
    for c in conns.iter_mut() {
        match c.next().await? {
            Response::EchoRes { .. } => {
                ctx.done.fetch_add(1, Ordering::Relaxed);
            }
            other => bail!("ECHO_REQ answered with {:?}", other.packet_type()),
        }
    }
    let elapsed = start.elapsed();
    let hold = a.duration.unwrap_or(Duration::from_secs(1));
    tokio::time::sleep(hold).await;
    let n = conns.len() as u64;
    drop(conns);
    let mut report = ctx.report(elapsed, n, None);
    report.details.insert("held_s".into(), hold.as_secs_f64());
    Ok(report)
}
