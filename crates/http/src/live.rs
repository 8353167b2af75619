//! Live updates: `/api/v1/events`, a server-sent-events stream that pushes
//! a compact JSON snapshot of the server every second while a client
//! listens (the dashboard draws its overview, its functions table and its
//! throughput chart from it).
//!
//! However many dashboards are open, the engine is asked once per second:
//! one poller makes each snapshot and every stream sends the same one. The
//! poller runs only while at least one stream is open, and stops at the
//! first tick that finds none. A stream ends when its client goes away
//! (the next write fails and the connection drops it).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::HeaderName;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use bytes::Bytes;
use serde::Serialize;
use sprocket_engine::FunctionCounters;
use tokio::sync::watch;

use crate::api::{AppState, CountersOut, WorkerOut};
use crate::backend::{Backend, Unavailable};

/// How often the poller asks the engine, and so how often streams send.
const PERIOD: Duration = Duration::from_secs(1);

/// The latest snapshot as the JSON text every stream sends; `None` until
/// the poller made one.
type Latest = Option<Arc<str>>;

/// The one poller shared by every open stream.
pub(crate) struct LiveFeed {
    backend: Arc<dyn Backend>,
    started: Instant,
    store: String,
    latest: watch::Sender<Latest>,
    /// Whether the poller task runs. Streams subscribe and the poller
    /// decides to stop under this lock, so a stream that opens just as
    /// the poller finds none never waits on a poller that left.
    polling: Mutex<bool>,
}

impl LiveFeed {
    pub(crate) fn new(backend: Arc<dyn Backend>, started: Instant, store: String) -> Arc<LiveFeed> {
        let (latest, _) = watch::channel(None);
        Arc::new(LiveFeed { backend, started, store, latest, polling: Mutex::new(false) })
    }

    /// A receiver of the snapshots; starts the poller when none runs.
    fn subscribe(self: &Arc<Self>) -> watch::Receiver<Latest> {
        let mut polling = self.polling.lock().unwrap_or_else(PoisonError::into_inner);
        let receiver = self.latest.subscribe();
        if !*polling {
            *polling = true;
            tokio::spawn(poll(Arc::clone(self)));
        }
        receiver
    }

    /// Whether any stream still listens; when none does, the poller is
    /// marked stopped (and must return).
    fn anyone_listening(&self) -> bool {
        let mut polling = self.polling.lock().unwrap_or_else(PoisonError::into_inner);
        if self.latest.receiver_count() == 0 {
            *polling = false;
            // A later first stream must not get a snapshot from long ago.
            self.latest.send_replace(None);
            return false;
        }
        true
    }
}

async fn poll(feed: Arc<LiveFeed>) {
    let mut ticks = tokio::time::interval(PERIOD);
    // A slow engine answer delays the next tick instead of bunching ticks.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rates = RateMeter::default();
    loop {
        ticks.tick().await;
        if !feed.anyone_listening() {
            return;
        }
        // When the server is stopping, streams keep their last snapshot
        // until the process ends.
        if let Ok(json) = snapshot(&feed, &mut rates).await {
            feed.latest.send_replace(Some(json.into()));
        }
    }
}

/// One snapshot of the server: what the dashboard shows.
#[derive(Serialize)]
struct Snapshot {
    /// When it was taken, Unix milliseconds.
    time_ms: u64,
    version: String,
    uptime_seconds: f64,
    store: StoreLine,
    connections: usize,
    /// Connections that registered at least one function.
    workers: usize,
    functions: usize,
    jobs: usize,
    queued: usize,
    running: usize,
    /// Sums over the functions that exist.
    counters: CountersOut,
    /// Per second since the previous snapshot; absent in the first.
    rates: Option<Rates>,
    function_rows: Vec<FunctionRow>,
    /// The connections that registered at least one function, newest
    /// first, as `/api/v1/workers` shows them.
    worker_rows: Vec<WorkerOut>,
}

#[derive(Serialize)]
struct StoreLine {
    name: String,
    up: bool,
}

#[derive(Serialize)]
struct FunctionRow {
    name: String,
    queued: usize,
    running: usize,
    /// Of `queued`, those waiting out a retry's backoff.
    retrying: usize,
    workers: usize,
    counters: CountersOut,
    rates: Option<Rates>,
    paused: bool,
}

/// Jobs per second. `failed` counts every job that ended without a
/// result: failures and exceptions.
#[derive(Serialize, Default, Clone, Copy)]
struct Rates {
    submitted: f64,
    completed: f64,
    failed: f64,
}

/// Turns counters into rates: remembers each function's counters from the
/// previous snapshot.
#[derive(Default)]
struct RateMeter {
    previous: Option<(Instant, HashMap<Bytes, FunctionCounters>)>,
}

impl RateMeter {
    /// The rates of each function (in the order given) and of all of them,
    /// and remembers these counters for next time. A function new since
    /// the previous snapshot started from zero; one whose counters went
    /// down (dropped and made again) counts from zero again.
    fn measure(
        &mut self,
        now: Instant,
        functions: &[(Bytes, FunctionCounters)],
    ) -> (Vec<Option<Rates>>, Option<Rates>) {
        let current: HashMap<Bytes, FunctionCounters> = functions.iter().cloned().collect();
        let Some((then, before)) = self.previous.replace((now, current)) else {
            return (vec![None; functions.len()], None);
        };
        let seconds = now.duration_since(then).as_secs_f64();
        if seconds <= 0.0 {
            return (vec![None; functions.len()], None);
        }
        let mut total = Rates::default();
        let rows = functions
            .iter()
            .map(|(name, now)| {
                let was = before.get(name).filter(|was| was.submitted <= now.submitted).copied().unwrap_or_default();
                // Hundredths are plenty for people and keep the text short.
                let gained = |n: u64, w: u64| (n.saturating_sub(w) as f64 / seconds * 100.0).round() / 100.0;
                let rates = Rates {
                    submitted: gained(now.submitted, was.submitted),
                    completed: gained(now.completed, was.completed),
                    failed: gained(now.failed + now.exceptions, was.failed + was.exceptions),
                };
                total.submitted += rates.submitted;
                total.completed += rates.completed;
                total.failed += rates.failed;
                Some(rates)
            })
            .collect();
        (rows, Some(total))
    }
}

/// Asks the engine once (its server, functions and workers views) and
/// renders the snapshot.
async fn snapshot(feed: &LiveFeed, rates: &mut RateMeter) -> Result<String, Unavailable> {
    let info = feed.backend.server_info().await?;
    let functions = feed.backend.functions().await?;
    let worker_rows: Vec<WorkerOut> =
        feed.backend.workers().await?.into_iter().filter(|w| !w.functions.is_empty()).map(WorkerOut::from).collect();
    let now = Instant::now();
    let counters: Vec<(Bytes, FunctionCounters)> = functions.iter().map(|f| (f.name.clone(), f.counters)).collect();
    let (row_rates, total_rates) = rates.measure(now, &counters);
    let mut sum = FunctionCounters::default();
    for (_, c) in &counters {
        sum.submitted += c.submitted;
        sum.completed += c.completed;
        sum.failed += c.failed;
        sum.exceptions += c.exceptions;
        sum.retried += c.retried;
        sum.dead += c.dead;
    }
    let function_rows: Vec<FunctionRow> = functions
        .iter()
        .zip(row_rates)
        .map(|(f, rates)| FunctionRow {
            name: String::from_utf8_lossy(&f.name).into_owned(),
            queued: f.total.saturating_sub(f.running),
            running: f.running,
            retrying: f.retrying,
            workers: f.workers,
            counters: f.counters.into(),
            rates,
            paused: f.paused,
        })
        .collect();
    let snapshot = Snapshot {
        time_ms: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0),
        version: info.version,
        uptime_seconds: feed.started.elapsed().as_secs_f64(),
        store: StoreLine { name: feed.store.clone(), up: !info.store_down },
        connections: info.connections,
        workers: worker_rows.len(),
        functions: info.functions,
        jobs: info.jobs,
        queued: function_rows.iter().map(|f| f.queued).sum(),
        running: function_rows.iter().map(|f| f.running).sum(),
        counters: sum.into(),
        rates: total_rates,
        function_rows,
        worker_rows,
    };
    // Plain data with string keys: serializing cannot fail.
    Ok(serde_json::to_string(&snapshot).unwrap_or_default())
}

/// `GET /api/v1/events`.
pub(crate) async fn events(State(s): State<AppState>) -> impl IntoResponse {
    let receiver = s.live.subscribe();
    let stream = futures::stream::unfold((receiver, true), |(mut receiver, first)| async move {
        let mut wait = !first;
        loop {
            if wait {
                // The feed never goes away while the server runs; if it
                // does, the stream ends.
                receiver.changed().await.ok()?;
            }
            wait = true;
            let latest = receiver.borrow_and_update().clone();
            if let Some(json) = latest {
                return Some((Ok::<Event, Infallible>(Event::default().data(&*json)), (receiver, false)));
            }
        }
    });
    // A proxy in front (nginx) would otherwise hold events back to fill
    // its buffer.
    ([(HeaderName::from_static("x-accel-buffering"), "no")], Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(submitted: u64, completed: u64, failed: u64, exceptions: u64) -> FunctionCounters {
        FunctionCounters { submitted, completed, failed, exceptions, ..FunctionCounters::default() }
    }

    #[test]
    fn rates_come_from_counter_differences() {
        let mut meter = RateMeter::default();
        let start = Instant::now();
        let a = Bytes::from_static(b"a");
        let b = Bytes::from_static(b"b");
        let (rows, total) = meter.measure(start, &[(a.clone(), counters(10, 5, 1, 0))]);
        assert!(rows[0].is_none() && total.is_none(), "no rates in the first snapshot");
        let later = start + Duration::from_secs(2);
        let (rows, _) = meter.measure(later, &[(a.clone(), counters(10, 5, 1, 0))]);
        assert_eq!(rows[0].expect("rates").completed, 0.0, "nothing ended");
        let later = later + Duration::from_secs(3);
        let (rows, total) =
            meter.measure(later, &[(a.clone(), counters(20, 9, 2, 1)), (b.clone(), counters(4, 2, 0, 0))]);
        let ra = rows[0].expect("rates for a");
        assert_eq!((ra.submitted, ra.completed, ra.failed), (3.33, 1.33, 0.67), "rounded to hundredths");
        let rb = rows[1].expect("rates for b, new: from zero");
        assert_eq!((rb.submitted, rb.completed), (1.33, 0.67));
        let total = total.expect("total");
        assert_eq!((total.submitted, total.completed, total.failed), (4.66, 2.0, 0.67));
        // Dropped and made again: its counters start over.
        let (rows, _) = meter.measure(later + Duration::from_secs(1), &[(a, counters(1, 1, 0, 0))]);
        assert_eq!(rows[0].expect("rates").completed, 1.0);
    }
}
