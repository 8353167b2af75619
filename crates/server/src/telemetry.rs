//! Numbers the server keeps for `/metrics` beside the engine: bytes in and
//! out of the Gearman connections (atomic counters the connections add to
//! and the web port reads, neither waiting for the other), and each
//! function's queue-wait and run-time histograms, fed by the engine task
//! from the records of the jobs the engine reports ended, and the time
//! from reading a submission to writing its JOB_CREATED.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use sprocket_engine::{ConnId, FastMap, Record};
use sprocket_http::{FunctionTimings, Histogram, Telemetry};
use sprocket_store::writer::{AtomicHistogram, CommitStats, HistogramSnapshot};

/// Bytes read from and written to every Gearman connection.
#[derive(Debug, Default)]
pub struct Traffic {
    received: AtomicU64,
    sent: AtomicU64,
}

impl Traffic {
    /// A connection read `n` bytes.
    pub fn received(&self, n: usize) {
        self.received.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A connection wrote `n` bytes.
    pub fn sent(&self, n: usize) {
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Submit-to-JOB_CREATED bucket bounds, in microseconds (10 µs to 10 s):
/// tens of microseconds without a store, a commit's milliseconds with one.
const SUBMIT_BOUNDS_US: &[u64] = &[
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

/// The time from reading a SUBMIT_JOB* packet to writing its JOB_CREATED,
/// in microseconds: one histogram for the whole server, which only the
/// engine task adds to (relaxed atomic adds nobody contends for) and the
/// web port reads whenever it likes.
#[derive(Debug)]
pub struct SubmitLatency(AtomicHistogram);

impl Default for SubmitLatency {
    fn default() -> SubmitLatency {
        SubmitLatency(AtomicHistogram::new(SUBMIT_BOUNDS_US))
    }
}

/// What the web port reads without asking the engine task.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedStats {
    pub traffic: Arc<Traffic>,
    /// The store writer's commits; `None` without a store.
    pub commits: Option<Arc<CommitStats>>,
    /// Submit to JOB_CREATED, added to by the engine task.
    pub submit_latency: Arc<SubmitLatency>,
}

impl SharedStats {
    /// The page's numbers: the job durations the engine task copied out,
    /// turned into histograms here (on the web port's thread), and the
    /// store's and traffic counters.
    pub(crate) fn telemetry(&self, job_timings: Vec<TimingsCopy>) -> Telemetry {
        let seconds = |h: HistogramSnapshot| Histogram {
            bounds: h.bounds.iter().map(|&us| us as f64 / 1e6).collect(),
            counts: h.counts,
            sum: h.sum as f64 / 1e6,
        };
        let plain = |h: HistogramSnapshot| Histogram {
            bounds: h.bounds.iter().map(|&n| n as f64).collect(),
            counts: h.counts,
            sum: h.sum as f64,
        };
        Telemetry {
            job_timings: histograms(job_timings),
            store_commit_seconds: self.commits.as_ref().map(|c| seconds(c.latency_us.snapshot())),
            store_batch_size: self.commits.as_ref().map(|c| plain(c.batch_size.snapshot())),
            submit_to_created_seconds: seconds(self.submit_latency.0.snapshot()),
            bytes_received: self.traffic.received.load(Ordering::Relaxed),
            bytes_sent: self.traffic.sent.load(Ordering::Relaxed),
        }
    }
}

/// The engine task's clock for submissions: when each submission that
/// will be answered with a JOB_CREATED was read, per connection in the
/// order the answers go out (a connection's replies keep request order,
/// so its answers come in the order of its submissions).
#[derive(Debug, Default)]
pub(crate) struct SubmitClock {
    /// Read times of the submissions still waiting for their answer. A
    /// connection's entry stays (empty) until it closes, so a client that
    /// submits one job at a time does not allocate for each.
    waiting: FastMap<ConnId, VecDeque<Instant>>,
    histogram: Arc<SubmitLatency>,
}

impl SubmitClock {
    pub(crate) fn new(histogram: Arc<SubmitLatency>) -> SubmitClock {
        SubmitClock { waiting: FastMap::default(), histogram }
    }

    /// `n` submissions on `conn`, read at `read_at`, will be answered with
    /// a JOB_CREATED each.
    pub(crate) fn submitted(&mut self, conn: ConnId, read_at: Instant, n: u64) {
        let queue = self.waiting.entry(conn).or_default();
        for _ in 0..n {
            queue.push_back(read_at);
        }
    }

    /// The answers in `created` (see the engine's `Outbox::created`) were
    /// written at `now`: each JOB_CREATED counts its submission's time; one
    /// that became an ERROR counts nothing.
    pub(crate) fn answered(&mut self, created: &[(ConnId, bool)], now: Instant) {
        for &(conn, sent) in created {
            let Some(read_at) = self.waiting.get_mut(&conn).and_then(VecDeque::pop_front) else { continue };
            if sent {
                let micros = u64::try_from(now.saturating_duration_since(read_at).as_micros()).unwrap_or(u64::MAX);
                self.histogram.0.observe(micros);
            }
        }
    }

    /// `conn` closed: its unanswered submissions are never answered.
    pub(crate) fn closed(&mut self, conn: ConnId) {
        self.waiting.remove(&conn);
    }
}

/// Job duration buckets' upper bounds, in milliseconds (1 ms to 1 h).
const DURATION_BOUNDS_MS: [u64; 17] =
    [1, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000];

/// Samples per bucket of [`DURATION_BOUNDS_MS`], and one above them all.
#[derive(Debug, Clone, Default)]
struct Durations {
    counts: [u64; DURATION_BOUNDS_MS.len() + 1],
    sum_ms: u64,
}

impl Durations {
    fn observe(&mut self, ms: u64) {
        self.counts[DURATION_BOUNDS_MS.partition_point(|&bound| bound < ms)] += 1;
        self.sum_ms = self.sum_ms.wrapping_add(ms);
    }

    fn in_seconds(&self) -> Histogram {
        Histogram {
            bounds: DURATION_BOUNDS_MS.iter().map(|&ms| ms as f64 / 1000.0).collect(),
            counts: self.counts.to_vec(),
            sum: self.sum_ms as f64 / 1000.0,
        }
    }
}

/// Queue wait and run time per function, owned by the engine task.
#[derive(Debug, Default)]
pub(crate) struct JobTimings {
    by_function: FastMap<Bytes, (Durations, Durations)>,
}

impl JobTimings {
    /// Counts the durations of a job that ended (one that never started
    /// has none).
    pub(crate) fn ended(&mut self, record: &Record) {
        let (Some(wait), run) = (record.queue_wait(), record.run_time()) else { return };
        let entry = match self.by_function.get_mut(record.function()) {
            Some(entry) => entry,
            None => self.by_function.entry(Bytes::copy_from_slice(record.function())).or_default(),
        };
        entry.0.observe(wait);
        if let Some(run) = run {
            entry.1.observe(run);
        }
    }

    /// Whether there are many more histograms than the `known` functions
    /// of the engine: then those of functions it no longer has are to be
    /// forgotten ([`JobTimings::keep_only`]), so that a server that sees
    /// ever new function names keeps bounded memory.
    pub(crate) fn outgrew(&self, known: usize) -> bool {
        self.by_function.len() > known.saturating_mul(2).max(1024)
    }

    /// Forgets the functions not in `known`, as the engine's per-function
    /// counters start again when a dropped function comes back.
    pub(crate) fn keep_only(&mut self, known: &std::collections::HashSet<Bytes>) {
        self.by_function.retain(|name, _| known.contains(name));
    }

    /// A copy of every function's counts, in no order: one allocation
    /// however many functions there are. The engine task makes it for a
    /// scrape, so the sorting and the histograms' own vectors are left to
    /// the web port's thread ([`histograms`]); with 10,000 functions they
    /// took the engine task several milliseconds per scrape.
    pub(crate) fn snapshot(&self) -> Vec<TimingsCopy> {
        self.by_function
            .iter()
            .map(|(name, (wait, run))| TimingsCopy {
                function: name.clone(),
                queue_wait: wait.clone(),
                run_time: run.clone(),
            })
            .collect()
    }
}

/// One function's counts as [`JobTimings::snapshot`] copies them.
#[derive(Debug, Clone)]
pub struct TimingsCopy {
    function: Bytes,
    queue_wait: Durations,
    run_time: Durations,
}

/// Every function's histograms in seconds, sorted by name.
pub(crate) fn histograms(copies: Vec<TimingsCopy>) -> Vec<FunctionTimings> {
    let mut all: Vec<FunctionTimings> = copies
        .into_iter()
        .map(|c| FunctionTimings {
            function: c.function,
            queue_wait: c.queue_wait.in_seconds(),
            run_time: c.run_time.in_seconds(),
        })
        .collect();
    all.sort_by(|a, b| a.function.cmp(&b.function));
    all
}

#[cfg(test)]
mod tests {
    use sprocket_proto::Priority;
    use sprocket_records::record::{Limits, Worker};
    use sprocket_records::state::Outcome;

    use super::*;

    /// A job of `function` submitted at 1000, started at `started`, ended
    /// at `ended` (never started when `started` is None).
    fn ended(function: &str, started: Option<u64>, ended: u64) -> Record {
        let mut record = Record::new(b"H:t:1", function.as_bytes(), b"", Priority::Normal, true, 1000).unwrap();
        if let Some(at) = started {
            let worker = Worker { client_id: Bytes::from_static(b"-"), peer: "127.0.0.1".into() };
            record.started(worker, at).unwrap();
        }
        record.ended(Outcome::Complete(b"ok"), ended, Limits { max_bytes: 1024 }).unwrap();
        record
    }

    #[test]
    fn ended_jobs_count_by_function_and_gone_functions_are_forgotten_when_outgrown() {
        let mut timings = JobTimings::default();
        timings.ended(&ended("resize", Some(1_004), 1_300));
        timings.ended(&ended("resize", Some(3_000), 3_001));
        timings.ended(&ended("never-ran", None, 2_000));
        let snapshot = histograms(timings.snapshot());
        assert_eq!(snapshot.len(), 1, "a job that never started has no durations");
        let resize = &snapshot[0];
        assert_eq!(resize.queue_wait.counts.iter().sum::<u64>(), 2);
        assert_eq!(resize.queue_wait.sum, 2.004);
        assert_eq!(resize.run_time.sum, 0.297);
        assert_eq!(resize.run_time.counts[0], 1, "1 ms is in the first bucket");

        for i in 0..2000 {
            timings.ended(&ended(&format!("f{i}"), Some(1_001), 1_002));
        }
        assert!(!timings.outgrew(1500));
        assert!(timings.outgrew(10));
        let known: std::collections::HashSet<Bytes> = [Bytes::from_static(b"resize")].into();
        timings.keep_only(&known);
        assert_eq!(timings.snapshot().len(), 1);
        timings.ended(&ended("b", Some(1_001), 1_002));
        timings.ended(&ended("a", Some(1_001), 1_002));
        let names: Vec<Bytes> = histograms(timings.snapshot()).into_iter().map(|f| f.function).collect();
        assert_eq!(names, [&b"a"[..], b"b", b"resize"], "sorted by name");
    }

    #[test]
    fn submissions_are_timed_to_their_answers_in_order_per_connection() {
        let histogram = Arc::new(SubmitLatency::default());
        let mut clock = SubmitClock::new(histogram.clone());
        let t0 = Instant::now();
        let ms = |n| t0 + std::time::Duration::from_millis(n);
        clock.submitted(1, t0, 2);
        clock.submitted(2, ms(1), 1);
        clock.submitted(1, ms(5), 1);
        // Connection 1's first answer, then connection 2's, then an insert
        // of connection 1 failed (an ERROR: not counted) and its third.
        clock.answered(&[(1, true), (2, true)], ms(3));
        clock.answered(&[(1, false), (1, true)], ms(20));
        let h = histogram.0.snapshot();
        assert_eq!(h.counts.iter().sum::<u64>(), 3, "three JOB_CREATEDs: {h:?}");
        assert_eq!(h.sum, 3_000 + 2_000 + 15_000, "microseconds from each read to its answer");
        // Answers to a connection that no longer waits count nothing.
        clock.closed(1);
        clock.answered(&[(1, true)], ms(30));
        assert_eq!(histogram.0.snapshot().counts.iter().sum::<u64>(), 3);
    }

    #[test]
    fn durations_fall_in_the_first_bucket_that_holds_them() {
        let mut d = Durations::default();
        for ms in [0, 1, 2, 3_600_000, 3_600_001] {
            d.observe(ms);
        }
        let h = d.in_seconds();
        assert_eq!(h.counts[0], 2, "0 and 1 ms are at most 1 ms");
        assert_eq!(h.counts[1], 1);
        assert_eq!(h.counts[DURATION_BOUNDS_MS.len() - 1], 1);
        assert_eq!(h.counts[DURATION_BOUNDS_MS.len()], 1, "above an hour");
        assert_eq!(h.bounds[0], 0.001);
        assert_eq!(h.sum, 7_200.004);
    }
}
