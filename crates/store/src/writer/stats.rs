//! Counts of the writer's commits for the server's metrics: how long each
//! commit took and how many operations it carried. The writer adds to them
//! with relaxed atomic increments and a reader (the web port's `/metrics`)
//! takes a snapshot whenever it likes, so neither waits for the other.

use std::sync::atomic::{AtomicU64, Ordering};

/// Commit durations' bucket bounds, in microseconds (0.1 ms to 10 s).
const LATENCY_BOUNDS_US: &[u64] = &[
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000,
];
/// Batch sizes' bucket bounds, in operations.
const BATCH_BOUNDS: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

/// A histogram with fixed bucket bounds that several threads may add to
/// and read without a lock.
#[derive(Debug)]
pub struct AtomicHistogram {
    bounds: &'static [u64],
    /// One count per bound (values at most that bound, above the one
    /// before), and one for values above the last.
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
}

/// A histogram as read at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// The buckets' upper bounds, increasing.
    pub bounds: Vec<u64>,
    /// Samples per bucket (not cumulative); one more than `bounds`: the
    /// last counts values above every bound.
    pub counts: Vec<u64>,
    /// The sum of every sample.
    pub sum: u64,
}

impl AtomicHistogram {
    /// A histogram with these bucket bounds (increasing) and no samples.
    pub fn new(bounds: &'static [u64]) -> AtomicHistogram {
        AtomicHistogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    /// Adds one sample.
    pub fn observe(&self, value: u64) {
        let bucket = self.bounds.partition_point(|&bound| bound < value);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// The counts now. Taken one bucket at a time while the writer may add,
    /// so a snapshot may miss the latest sample in some buckets; each count
    /// only grows, which is what Prometheus needs.
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds: self.bounds.to_vec(),
            counts: self.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
            sum: self.sum.load(Ordering::Relaxed),
        }
    }
}

/// The writer's commit statistics, shared with whoever reads them.
#[derive(Debug)]
pub struct CommitStats {
    /// How long each successful commit took, in microseconds (from its
    /// start on a connection to the database's answer).
    pub latency_us: AtomicHistogram,
    /// Operations per successful commit.
    pub batch_size: AtomicHistogram,
}

impl Default for CommitStats {
    fn default() -> CommitStats {
        CommitStats {
            latency_us: AtomicHistogram::new(LATENCY_BOUNDS_US),
            batch_size: AtomicHistogram::new(BATCH_BOUNDS),
        }
    }
}

impl CommitStats {
    /// A commit of `ops` operations took `micros`.
    pub fn committed(&self, ops: usize, micros: u64) {
        self.latency_us.observe(micros);
        self.batch_size.observe(ops as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_land_in_the_first_bucket_whose_bound_holds_them() {
        let stats = CommitStats::default();
        stats.committed(1, 100);
        stats.committed(3, 101);
        stats.committed(5000, 20_000_000);
        let latency = stats.latency_us.snapshot();
        assert_eq!(latency.counts[..3], [1, 1, 0]);
        assert_eq!(*latency.counts.last().unwrap(), 1, "above every bound");
        assert_eq!(latency.sum, 20_000_201);
        let batch = stats.batch_size.snapshot();
        assert_eq!(batch.counts[..3], [1, 0, 1]);
        assert_eq!(batch.counts.iter().sum::<u64>(), 3);
        assert_eq!(batch.counts.len(), batch.bounds.len() + 1);
    }
}
