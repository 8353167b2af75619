//! `sprocket bench`: a Gearman load generator that talks the wire protocol
//! directly over raw TCP (no client library in between), so it can drive
//! any Gearman server — Sprocket's `sprocketd` or gearmand — and its own
//! cost per job stays well below the server's.
//!
//! Modes (see [`Mode`]): `submit-bg`, `drain`, `roundtrip`, `mixed`, and
//! `idle` for memory-per-connection measurements. Results are a
//! [`Report`], printed as a table or, with `--json`, as one JSON line.
//!
//! Stable interface for the CLI: [`BenchArgs`] (a `clap::Args`, flattened
//! into `sprocket bench`) and [`run`].

mod args;
pub mod chart;
mod conn;
mod limits;
mod modes;
mod progress;
pub mod report;
pub mod summary;

use std::sync::Arc;

pub use args::{BenchArgs, Mode, PriorityArg};
pub use report::{Latency, Report};

/// Runs one benchmark and returns its report without printing it.
pub async fn measure(args: BenchArgs) -> anyhow::Result<Report> {
    args.validate()?;
    limits::raise_open_files(args.connections + args.workers + 64);
    let target = conn::Target::from_args(&args)?;
    let ctx = Arc::new(modes::Ctx::new(args, target));
    match ctx.args.mode {
        Mode::SubmitBg => modes::submit_bg::run(ctx).await,
        Mode::Drain => modes::drain::run(ctx).await,
        Mode::Roundtrip => modes::roundtrip::run(ctx).await,
        Mode::Mixed => modes::mixed::run(ctx).await,
        Mode::Idle => modes::idle::run(ctx).await,
        Mode::ResultRead => modes::result_read::run(ctx).await,
    }
}

/// Builds the runtime `--threads` asks for (one thread: a current-thread
/// runtime; more: a multi-threaded one), runs the benchmark on it and
/// prints the result. For callers that are not inside a runtime.
pub fn run_blocking(args: BenchArgs) -> anyhow::Result<()> {
    args.validate()?;
    let rt = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build()
    }
    .map_err(|e| anyhow::anyhow!("cannot start the load generator's runtime: {e}"))?;
    rt.block_on(run(args))
}

/// Runs one benchmark and prints the result to stdout: a table, or one
/// line of JSON with `--json`. Uses the caller's runtime, whatever
/// `--threads` says; [`run_blocking`] builds the runtime it asks for.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let json = args.json;
    let report = measure(args).await?;
    if json {
        println!("{}", report.json()?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}
