//! The loads. Each mode connects everything first (untimed), then starts
//! the clock, runs, and returns a [`Report`](crate::report::Report).

pub mod drain;
pub mod idle;
pub mod mixed;
pub mod result_read;
pub mod roundtrip;
pub mod submit_bg;

mod roles;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hdrhistogram::Histogram;

use crate::args::BenchArgs;
use crate::conn::Target;
use crate::report::{Latency, Report};

/// Settings and shared counters of one run.
pub struct Ctx {
    pub args: BenchArgs,
    /// Where connections go (and how: TCP or TLS).
    pub target: Target,
    /// Distinguishes this run's function names and uniques from any other.
    pub run_id: String,
    /// The payload every job carries.
    pub payload: Bytes,
    /// Operations done so far in the current phase (drives the progress bar).
    pub done: Arc<AtomicU64>,
    /// ERROR packets seen.
    pub errors: AtomicU64,
}

impl Ctx {
    /// Builds the context; the payload is printable bytes of the asked size.
    pub fn new(args: BenchArgs, target: Target) -> Ctx {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let run_id = format!("{:x}{:x}", std::process::id(), nanos & 0xffff_ffff_ffff);
        let payload: Vec<u8> = (0..args.size).map(|i| b'a' + (i % 26) as u8).collect();
        Ctx {
            args,
            target,
            run_id,
            payload: Bytes::from(payload),
            done: Arc::new(AtomicU64::new(0)),
            errors: AtomicU64::new(0),
        }
    }

    /// A function name private to this run: `<prefix>-<mode>-<run>-<suffix>`.
    pub fn function(&self, suffix: &str) -> Bytes {
        Bytes::from(format!("{}-{}-{}-{suffix}", self.args.function, self.args.mode.name(), self.run_id))
    }

    /// The unique id for job number `ticket`: empty unless --unique.
    pub fn unique(&self, ticket: u64) -> Bytes {
        if self.args.unique {
            Bytes::from(format!("{}-{ticket}", self.run_id))
        } else {
            Bytes::new()
        }
    }

    /// A report skeleton with the run's settings filled in.
    pub fn report(&self, elapsed: Duration, jobs: u64, latency: Option<Latency>) -> Report {
        let a = &self.args;
        let secs = elapsed.as_secs_f64().max(1e-9);
        Report {
            mode: a.mode.name().to_string(),
            server: a.server.clone(),
            connections: a.connections,
            workers: a.workers,
            size: a.size,
            priority: a.priority.name().to_string(),
            unique: a.unique,
            window: a.window,
            jobs_requested: a.jobs,
            duration_limit_s: a.duration.map(|d| d.as_secs_f64()),
            elapsed_s: secs,
            jobs,
            throughput: jobs as f64 / secs,
            errors: self.errors.load(Ordering::Relaxed),
            latency,
            details: Default::default(),
        }
    }
}

/// Hands out job numbers to the connections of one phase until N are
/// given out, the deadline passes, or the phase is stopped.
pub struct Tickets {
    next: AtomicU64,
    limit: u64,
    deadline: Option<Instant>,
    stopped: AtomicBool,
}

impl Tickets {
    pub fn new(limit: u64, duration: Option<Duration>) -> Tickets {
        Tickets {
            next: AtomicU64::new(0),
            limit,
            deadline: duration.map(|d| Instant::now() + d),
            stopped: AtomicBool::new(false),
        }
    }

    /// The next job number, or None when the phase is over.
    pub fn claim(&self) -> Option<u64> {
        if self.stopped.load(Ordering::Relaxed) {
            return None;
        }
        if let Some(d) = self.deadline {
            if Instant::now() >= d {
                return None;
            }
        }
        let t = self.next.fetch_add(1, Ordering::Relaxed);
        (t < self.limit).then_some(t)
    }

    /// Ends the phase early.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }
}

/// A latency histogram in nanoseconds, 1 ns to 60 s, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    // Bounds are constants that hdrhistogram accepts; fall back to an
    // auto-resizing one rather than panic if that ever changes.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap_or_else(|_| Histogram::new(3).expect("3 sigfigs is valid"))
}

/// Records one duration, saturating at the histogram's top.
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).clamp(1, 60_000_000_000);
    let _ = h.record(ns);
}

/// Waits for every task and merges their histograms; the first error wins.
pub async fn join_all<T: Send + 'static>(
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<T>>>,
) -> anyhow::Result<Vec<T>> {
    let mut out = Vec::with_capacity(tasks.len());
    let mut first_err = None;
    for t in tasks {
        match t.await {
            Ok(Ok(v)) => out.push(v),
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(e) => {
                first_err.get_or_insert(anyhow::anyhow!("bench task failed: {e}"));
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}
